"""Which packages the distribution holds (the rest of the metadata is in pyproject.toml).

`conf/` stays at the top of the repository but ships inside the package as `neurogrow.conf`, so that a
non-editable install finds the configs (the Hydra app reads `pkg://neurogrow.conf`). pyproject.toml
alone cannot add a mapped package to the automatically found ones; this file can.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["neurogrow", "neurogrow.*"]), "neurogrow.conf"],
    package_dir={"neurogrow.conf": "conf"},
    # the configs, and data files beside the code (e.g. neurogrow/report/paper_results.yaml)
    package_data={"neurogrow.conf": ["**/*.yaml"], "": ["*.yaml"]},
)
