"""allocator.py: glibc keeps a freed tensor's block for the next one instead of
mapping fresh pages (which then fault in one by one)."""

import subprocess
import sys

SCRIPT = """
import ctypes, sys, torch
from monosemantic.allocator import keep_freed_memory
class Info(ctypes.Structure):   # glibc's struct mallinfo2
    _fields_ = [(f, ctypes.c_size_t) for f in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Info
if sys.argv[1] == "kept":
    assert keep_freed_memory() and keep_freed_memory()   # idempotent
before = mallinfo2()
t = torch.empty(5 << 20)                                 # 20 MiB of float32
mapped = mallinfo2().hblkhd - before.hblkhd
del t
print(mapped >> 20, mallinfo2().fordblks >> 20)
"""


def _mib(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    mapped, free_in_heap = out.stdout.split()
    return int(mapped), int(free_in_heap)


def test_a_freed_20_mib_tensor_stays_in_the_heap_for_the_next_step():
    # by default glibc maps a block this large afresh and unmaps it when freed
    assert _mib("default")[0] >= 20
    mapped, free_in_heap = _mib("kept")
    assert mapped == 0 and free_in_heap >= 20, (mapped, free_in_heap)
