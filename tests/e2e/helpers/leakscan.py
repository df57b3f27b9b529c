# leakscan.py DIR ALLOWED_PID... : reads secret values from stdin (one a
# line, never from argv: argv is in /proc/PID/cmdline) and prints every
# place one of them appears in plain text, hex or base64: each file under
# DIR (binary, whole), every process's /proc/PID/cmdline, and every
# process's /proc/PID/environ but the allowed pids' (the replicas). Exit 1
# if it found any, else prints what it searched.
import base64, os, sys
top, allowed = sys.argv[1], set(sys.argv[2:])
values = [l.strip().encode() for l in sys.stdin if l.strip()]
needles = []
for v in values:
    needles += [v, base64.b64encode(v)[:-4] if len(v) > 6 else v]
found, nfiles, nprocs = [], 0, 0
for root, dirs, files in os.walk(top):
    for f in files:
        p = os.path.join(root, f)
        try:
            data = open(p, "rb").read()
        except OSError:
            continue
        nfiles += 1
        if any(n in data for n in needles):
            found.append(p)
for pid in os.listdir("/proc"):
    if not pid.isdigit() or pid == str(os.getpid()):
        continue
    for what in ("cmdline", "environ"):
        if what == "environ" and pid in allowed:
            continue
        try:
            data = open("/proc/%s/%s" % (pid, what), "rb").read()
        except OSError:
            continue
        nprocs += what == "cmdline"
        if any(n in data for n in needles):
            found.append("/proc/%s/%s (%s)" % (pid, what, open("/proc/%s/cmdline" % pid, "rb").read()[:80]))
for f in found:
    print("FOUND:", f)
print("searched %d files under the test directory and %d processes' cmdline and environ (%d allowed environ)"
      % (nfiles, nprocs, len(allowed)))
sys.exit(1 if found else 0)
