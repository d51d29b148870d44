"""The host package's layout follows the data path (issue #22, docs/architecture.md): one
subpackage per stage, and no stage imports a later one. Every import is read with ``ast``, those
inside functions included (the command line and several stages import lazily). Also: no module
over MAX_LINES but the few listed with their reasons, and every transport offers the whole
Transport protocol."""
import ast
import inspect
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "host" / "strideclip"
SHARED = REPO / "shared" / "clipcore"

# The stages in the order data flows through them. A module may import its own stage and the
# stages of a lower rank; stages of one rank are siblings and import neither each other nor
# anything above. "strideclip" is the package root (its version), at the bottom with errors.py.
STAGE_RANK = {
    "strideclip": 0,  # __init__.py: the version
    "errors": 0,  # every exception, under StrideClipError
    "stream": 1,  # packets, the readers' boundary (schema), the decoder, the session log's records
    "link": 2,  # transports (BLE, USB serial, playback) and the sample clock
    "sim": 2,  # the simulated runner: a clip without hardware, beside the links
    "imports": 2,  # other sensors' recordings turned into clip packets and a session log, beside the links
    "analysis": 3,  # steps, body frame, metrics, fatigue
    "coaching": 4,  # the cue policy's glue, cue settings, cue outcomes, the cadence plan
    "session": 5,  # pipeline, recorder, live clips, replay and analyse
    "store": 6,  # the history, its repair, log sync from the clip's flash
    "views": 7,  # terminal, demo, report, export, FIT, the dashboard
    "device": 8,  # flashing the clip, compiling its files
    "evaluation": 8,  # data sets, scoring, each stage's evaluation
    "cli": 9,  # the command line: one module per group of commands
}

# Imports against the order, each with its reason. None today: keep it that way by putting code
# in the stage it belongs to rather than adding to this.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}

MAX_LINES = 400
OVER_MAX_LINES = {  # module: why it stays longer
    "shared/clipcore/steps.py": "the fixed-point step detector and its one viper function, kept whole on purpose "
                                "(the clip's hot path; docs/step-detector.md)",
    "shared/clipcore/wire.py": "the clip's part of the wire protocol in one module: the clip loads only this one "
                               "(RAM on an ESP32 without PSRAM), the host adds its decoders in protocol.py",
}


def _modules() -> dict[str, Path]:
    """strideclip.x.y -> its file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """Every strideclip module this one imports (as written: a package, a module, or a name in
    one), with the line, wherever the import statement stands."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "strideclip"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "strideclip":
                continue
            found.append((target, node.lineno))
            # `from strideclip.stage import module`: the module is what is used
            found += [(f"{target}.{a.name}", node.lineno) for a in node.names]
    return found


def test_every_module_belongs_to_a_stage_in_the_order():
    stages = {_stage(m) for m in _modules()}
    assert stages <= set(STAGE_RANK), f"stages not in STAGE_RANK: {sorted(stages - set(STAGE_RANK))}"
    subpackages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    top_modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top_modules == {"errors"}, f"modules beside the stages: {sorted(top_modules - {'errors'})}"
    assert subpackages == set(STAGE_RANK) - {"strideclip", "errors"}


def test_no_stage_imports_a_later_one():
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        here = _stage(module)
        for target, line in _imports(module, path):
            if target not in modules:  # a name imported from a module: its module is checked
                continue
            there = _stage(target)
            if there == here or (module, target) in ALLOWED_UPWARD:
                continue
            if STAGE_RANK[there] >= STAGE_RANK[here]:
                wrong.append(f"{path.relative_to(REPO)}:{line}: {here} (rank {STAGE_RANK[here]}) imports "
                             f"{target} ({there}, rank {STAGE_RANK[there]})")
    assert not wrong, "imports against the data path:\n" + "\n".join(wrong)


def test_the_allowed_exceptions_are_still_needed():
    modules = _modules()
    used = {(m, t) for m, p in modules.items() for t, _ in _imports(m, p)}
    assert not set(ALLOWED_UPWARD) - used, f"no longer imported: {sorted(set(ALLOWED_UPWARD) - used)}"


def test_the_order_catches_an_import_against_it(tmp_path):
    """The check itself: a lower stage importing a higher one, inside a function, is found."""
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from strideclip.session.live import LiveClip\n    from strideclip.views import report\n")
    found = _imports("strideclip.stream.probe", path)
    assert ("strideclip.session.live", 2) in found and ("strideclip.views.report", 3) in found
    assert all(STAGE_RANK[_stage(t)] > STAGE_RANK["stream"] for t, _ in found)


def test_no_module_is_over_the_limit_but_those_listed():
    files = sorted(PACKAGE.rglob("*.py")) + sorted(SHARED.rglob("*.py"))
    over = {str(p.relative_to(REPO)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert set(over) <= set(OVER_MAX_LINES), {k: v for k, v in over.items() if k not in OVER_MAX_LINES}
    assert set(OVER_MAX_LINES) <= set(over), f"no longer over {MAX_LINES} lines: {sorted(set(OVER_MAX_LINES) - set(over))}"


@pytest.mark.parametrize("name", ["BleTransport", "SerialTransport", "PlaybackTransport", "SimulatedClipTransport"])
def test_every_transport_offers_the_whole_transport_protocol(name):
    from strideclip.link import ble, playback, serial
    from strideclip.link.transport import Transport

    cls = getattr(ble, name, None) or getattr(serial, name, None) or getattr(playback, name)
    members = {n for n in vars(Transport) if not n.startswith("_")} | set(Transport.__annotations__)
    # attributes set in __init__ (connected, rtt_ms on some) count: read them from its source
    source = "".join(inspect.getsource(c) for c in cls.__mro__ if c.__module__.startswith("strideclip"))
    missing = [m for m in sorted(members) if not hasattr(cls, m) and f"self.{m} =" not in source]
    assert not missing, f"{name} lacks {missing}"
    for m in ("run", "command"):
        assert inspect.iscoroutinefunction(getattr(cls, m)), f"{name}.{m} is not async"


def _untyped(path: Path) -> list[str]:
    """The public functions and methods of a module that lack a type, each as "line name: what":
    a parameter (but self and cls) with no annotation, or no return annotation (but __init__).
    Public: a name with no leading underscore (or __init__), at module level or in a public class."""
    found = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.name.startswith("_") and node.name != "__init__":
                    continue
                a = node.args
                params = a.posonlyargs + a.args + a.kwonlyargs + [p for p in (a.vararg, a.kwarg) if p]
                missing = [p.arg for p in params if p.annotation is None and p.arg not in ("self", "cls")]
                if node.returns is None and node.name != "__init__":
                    missing.append("return")
                if missing:
                    found.append(f"{node.lineno} {prefix}{node.name}: {', '.join(missing)}")

    visit(ast.parse(path.read_text(), str(path)).body, "")
    return found


def test_every_public_function_is_typed():
    """Issue #22: every public function and method of the host package says what it takes and gives."""
    untyped = [f"{path.relative_to(REPO)}:{where}"
               for path in sorted(PACKAGE.rglob("*.py")) for where in _untyped(path)]
    assert not untyped, f"{len(untyped)} public functions without types:\n" + "\n".join(untyped)


def test_the_type_check_finds_what_is_missing(tmp_path):
    """The check itself: a missing parameter or return annotation is found, in functions, methods,
    async functions and nested classes; private names and self/cls are left alone."""
    path = tmp_path / "probe.py"
    path.write_text("def f(a: int, b) -> int: ...\n"
                    "async def g(*, a: int): ...\n"
                    "def _private(a): ...\n"
                    "class C:\n"
                    "    def __init__(self, x): ...\n"
                    "    def m(self, *args: int, **kw) -> None: ...\n"
                    "    @classmethod\n"
                    "    def k(cls) -> 'C': ...\n"
                    "    class Inner:\n"
                    "        def n(self, y: int): ...\n"
                    "class _Hidden:\n"
                    "    def m(self, x): ...\n")
    assert _untyped(path) == ["1 f: b", "2 g: return", "5 C.__init__: x", "6 C.m: kw", "10 C.Inner.n: return"]


def test_the_architecture_doc_names_every_module_of_the_tree():
    """docs/architecture.md matches the tree: every module is in its table, by name."""
    doc = (REPO / "docs" / "architecture.md").read_text()
    package = REPO / "host" / "strideclip"
    missing = [str(p.relative_to(package)) for p in sorted(package.rglob("*.py"))
               if p.name != "__init__.py" and f"`{p.name}`" not in doc]
    assert not missing, f"docs/architecture.md does not name: {', '.join(missing)}"
