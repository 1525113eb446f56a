"""CPU seconds (user + system) used so far by a server's process group.

Usage: python bench/server_cpu.py PID      prints the seconds, e.g. 12.34
PID leads the group (bin/chroma-server starts each server as a group leader); every live process
of the group is counted, with the time of its reaped children.
"""

import os
import sys

TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid):
    total = 0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # After the command: state ppid pgrp ... utime(14) stime(15) cutime(16) cstime(17).
        if int(fields[2]) == pgid:
            total += sum(int(x) for x in fields[11:15])
    return total / TICK


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(f"{group_cpu_seconds(int(sys.argv[1])):.2f}")
