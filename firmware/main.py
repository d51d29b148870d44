# The clip's boot entry: MicroPython runs /main.py after boot.py. Everything lives in clipfw/.
from clipfw import app

app.main()
