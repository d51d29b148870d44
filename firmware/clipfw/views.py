"""Writing the first n bytes of a buffer without allocating: a memoryview per length, made the
first time (or ahead, with ``prepare``) and kept. Streams take views, not slices, so the clip's
steady state allocates nothing."""


class Views:
    def __init__(self):
        self._of = None
        self._views = {}

    def prepare(self, buf, lengths):
        self._of = buf
        self._views = {}
        for n in lengths:
            self._views[n] = memoryview(buf)[:n]

    def get(self, buf, n):
        """buf itself if n covers it, else the view of its first n bytes."""
        if n == len(buf):
            return buf
        if buf is not self._of:
            self._of = buf
            self._views = {}
        view = self._views.get(n)
        if view is None:
            view = memoryview(buf)[:n]
            self._views[n] = view
        return view
