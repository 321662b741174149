"""genworld: the open general world model over vision, sound, touch, proprioception and actions."""

import os

# OpenMP threads that spin while they wait make torch 5-13x slower on a small machine as soon as any
# other process wants a core (measured: a tiny transformer step 3.1 s spinning vs 0.23 s passive on 2
# busy cores). It must be set before torch loads OpenMP; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
