"""Running campaigns on clusters.

- `hetero submit CAMPAIGN --profile NAME`: one queue job per step through jobflow-remote
  (hetero.hpc.remote), per-step resources from the profile (hetero.hpc.resources), stores in
  hetero.hpc.stores; `hetero status | resume | cancel` follow it.
- `hetero submit --single-allocation`: one batch script running the whole campaign (hetero.hpc.single).
Profiles live in configs/hpc/*.yaml (hetero.hpc.profile).
"""

from hetero.hpc.profile import SCHEDULERS, HpcProfile, HpcProfileError, load_profile, parse_profile
from hetero.hpc.single import render_script, write_and_submit

__all__ = ["SCHEDULERS", "HpcProfile", "HpcProfileError", "load_profile", "parse_profile", "render_script",
           "write_and_submit"]
