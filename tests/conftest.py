"""Settings for the whole test suite.

Hypothesis: no per-example deadline. The properties here check behaviour, not speed (speed is checked by the
benchmarks in tests/bench/); on a loaded two-core host an example that normally takes 10 ms can take 400 ms,
and a deadline would turn that into a spurious failure. With ``CI`` set, Hypothesis' own ``ci`` profile
(derandomised, no example database) applies as well.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("cti", deadline=None)
settings.register_profile("cti-ci", parent=settings.get_profile("ci"), deadline=None)
settings.load_profile("cti-ci" if os.environ.get("CI") else "cti")
