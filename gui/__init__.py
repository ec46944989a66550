"""The Qt GUI (``labpnn gui``): launch, watch, queue and browse runs; align outside runs.

Runs are ``labpnn run`` child processes; the window follows them through the loopback
channel (:mod:`labpnn.live`) and their SWMR run files. See docs/gui.md.
"""
