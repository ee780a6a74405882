"""allocator.py: glibc keeps a freed tensor's block for the next one instead of
mapping fresh pages (which then fault in one by one)."""

import subprocess
import sys

MALLINFO = """
import ctypes, sys, torch
class Info(ctypes.Structure):   # glibc's struct mallinfo2
    _fields_ = [(f, ctypes.c_size_t) for f in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Info
"""

SCRIPT = MALLINFO + """
from monosemantic.allocator import keep_freed_memory
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


PASS_SCRIPT = MALLINFO + """
import os
from monosemantic.allocator import reused_memory
def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
with reused_memory():
    before = mallinfo2()
    t = torch.empty(16 << 20)                            # 64 MiB: above any mmap threshold
    t.fill_(1.0)
    inside = mallinfo2().hblkhd - before.hblkhd
    peak = rss_mib()
    del t
after = mallinfo2()
released = peak - rss_mib()
u = torch.empty(16 << 20)
outside = mallinfo2().hblkhd - after.hblkhd
print(inside >> 20, outside >> 20, released)
"""


def test_a_training_pass_maps_nothing_afresh_and_gives_its_free_memory_back():
    out = subprocess.run([sys.executable, "-c", PASS_SCRIPT], capture_output=True, text=True, check=True)
    inside, outside, released = map(int, out.stdout.split())
    assert inside == 0, "a 64 MiB tensor inside reused_memory() was mapped afresh"
    assert released >= 60, f"only {released} MiB went back to the OS after the pass (malloc_trim)"
    assert outside >= 64, "mappings stayed off after the pass"
