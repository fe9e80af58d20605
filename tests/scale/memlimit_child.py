"""Run in a subprocess by test_memory_limit.py: predict over a .npy larger than this
process's address-space limit, after showing that loading it whole fails here.

argv: LIMIT_MB SPEC INPUT_DIM INPUT.npy OUTPUT.npy BATCH_SIZE
"""
import resource
import sys

limit = int(sys.argv[1]) << 20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

import numpy as np  # noqa: E402 - imported under the limit on purpose

import graphspec.api as api  # noqa: E402
from graphspec.engines import embedded  # noqa: E402

spec, input_dim, source, output = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
batch_size = int(sys.argv[6])
try:
    np.load(source)
    print("in-memory: loaded")
except MemoryError:
    print("in-memory: MemoryError")
model = api.load(spec, seed=0, params={"input_dim": input_dim}).model()
embedded.predict(model, {"pixels": source}, output, batch_size=batch_size, progress=False)
status = open("/proc/self/status").read()
peak = int(status.split("VmPeak:")[1].split()[0]) >> 10
print(f"streamed: ok VmPeak {peak} MB, limit {limit >> 20} MB, "
      f"maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10} MB")
