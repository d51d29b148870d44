"""The coach's live dashboard: every athlete at a glance in the browser, with no internet.

A Bokeh server (its JavaScript served by the package, no CDN) in the same event loop as the live
sessions (strideclip.session.live): the clips - BLE, USB or simulated - go through the usual recorder and
pipeline, and every browser page shows their state within a fraction of a second. Per athlete a tile (cadence
against its target band, impact, pelvic rotation / drop / tilt, fatigue state, time running,
link loss, latency, battery, RSSI, the cue log and buttons to cue), charts of the last minutes,
and a session view with each athlete's summary and report.

Safe by default: it listens on 127.0.0.1 and answers only to this machine's own names. Serving
to the LAN needs ``lan=True``: then every route is under the access token printed in the terminal
(``http://laptop:8050/<token>/``), and a request without it gets 403. In both modes one gate
(gate.py) refuses foreign Host names and requests other pages make; docs/security.md.

The package: state.py (what every page shows, as plain values: the tiles, the metronomes, the
session view), markup.py (the tiles and the session view as HTML), page.py (the Bokeh app, with
dashboard.css and click.js, the laptop's metronome click), gate.py (the gate in front of every
route) and server.py (the Bokeh server, its two extra routes, and the run).
"""
