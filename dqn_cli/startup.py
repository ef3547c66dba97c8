"""Start-up of the console scripts, with the garbage collector off.

Start-up makes hundreds of thousands of objects that live until the process exits: torch's,
Hydra's, the config's. The garbage collector would walk them again and again while they are made,
and once more at exit. So a script starts with the collector off (scripts.py), and the command
calls `start_up_done()` when its real work begins: what exists then is frozen (never walked again)
and collection resumes for what the work makes.
"""

from __future__ import annotations

import gc


def start_up_done() -> None:
    gc.freeze()
    gc.enable()
