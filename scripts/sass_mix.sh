#!/bin/bash
# scripts/sass_mix.sh [FILE.cu [KERNEL_REGEX]] — the instruction mix of the attention kernels from their SASS, the
# measure this project has of a kernel's per-score cost without a GPU (docs/gpu.md, "Instructions per score").
# Prints, per kernel matching KERNEL_REGEX (default: version 4's bf16-storage kernels), the static counts (all
# instructions, the main loop's: a tile, or a dK / dV iteration, mma.sync = HMMA, ldmatrix = LDSM, MUFU, convergence
# barriers BSSY, branches) and, for each stretch
# of code between two HMMA that holds exponentials (the score code: the softmax or the P / dS of the backward),
# "instructions/exponentials". With WHOLE=1 the kernels' `if (full)` tests are taken as true in a copy of the file,
# so the stretches are a whole tile's path alone (the masked copy gone).
#
# Needs cuobjdump. The CUDA 13 toolkit of the CI image ships nvcc and ptxas without it; what worked there: Debian
# non-free's nvidia-cuda-toolkit 11.8 package, unpacked (apt-get download nvidia-cuda-toolkit; dpkg -x), whose
# cuobjdump reads what its own ptxas makes of nvcc 13's PTX (the .version line lowered to 7.8):
#   CUOBJDUMP=/x/usr/bin/cuobjdump SASS_PTXAS=/x/usr/bin/ptxas bash scripts/sass_mix.sh
# (11.8's ptxas allocates registers a little differently from 13's: check registers and spills with nvcc 13
# -Xptxas -v, as attention_tc3.cu's header says). Where nvcc's own toolkit has cuobjdump, leave SASS_PTXAS unset.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-cuda/attention_tc3.cu}
RX=${2:-attn_tc4_.*Lb1}
# cuobjdump: $CUOBJDUMP, else on PATH, else beside nvcc
CUOBJDUMP=${CUOBJDUMP:-$(command -v cuobjdump || echo "$(dirname "$(command -v nvcc || echo .)")/cuobjdump")}
[ -x "$CUOBJDUMP" ] || command -v "$CUOBJDUMP" > /dev/null ||
  { echo "sass_mix: no cuobjdump (set CUOBJDUMP; see the header)" >&2; exit 2; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cu="$SRC"
if [ "${WHOLE:-0}" = 1 ]; then
  cu="$(dirname "$SRC")/.sass_mix_whole_$$.cu" # beside the original, for its includes
  trap 'rm -rf "$T" "$cu"' EXIT
  sed 's/if (full) t3_/if (true) t3_/; s/if (full \&\& (HD == 64 || !xr))/if (true)/' "$SRC" > "$cu"
fi
if [ -n "${SASS_PTXAS:-}" ]; then
  nvcc -arch=sm_90 -ptx -O3 -std=c++17 -I src -I cuda -o "$T/k.ptx" "$cu"
  sed -i 's/^\.version .*/.version 7.8/' "$T/k.ptx"
  "$SASS_PTXAS" -arch=sm_90 -O3 -o "$T/k.cubin" "$T/k.ptx"
else
  nvcc -arch=sm_90 -cubin -O3 -std=c++17 -I src -I cuda -o "$T/k.cubin" "$cu"
fi
"$CUOBJDUMP" -sass "$T/k.cubin" > "$T/k.sass"
python3 - "$T/k.sass" "$RX" <<'PY'
import collections, re, sys
kern, cur = collections.OrderedDict(), None
for l in open(sys.argv[1]):
    m = re.search(r'Function : (\S+)', l)
    if m:
        cur = m.group(1)
        kern[cur] = []
        continue
    m = re.match(r'\s*/\*([0-9a-f]+)\*/\s+(?:@!?U?P\w+\s+)?([A-Z0-9_.]+)(.*)', l)
    if m and cur:
        kern[cur].append((int(m.group(1), 16), m.group(2), m.group(3)))
print("%-34s %6s %5s %5s %5s %5s %5s %5s  %s" % ("kernel", "all", "loop", "HMMA", "LDSM", "MUFU", "BSSY", "BRA",
                                                  "score code between HMMA: instructions/exponentials"))
for k, ins in kern.items():
    if not re.search(sys.argv[2], k):
        continue
    # the main loop: of the backward branches, the one whose body holds the most HMMA (then the shortest): its
    # static instructions (a tile's, or a dK / dV iteration's; both copies of code behind a branch counted)
    loop = (0, 0)
    for a, op, rest in ins:
        t = re.search(r'0x([0-9a-f]+)', rest) if op.startswith('BRA') else None
        if t and int(t.group(1), 16) < a:
            body = [o for b, o, _ in ins if int(t.group(1), 16) <= b <= a]
            h = sum(o.startswith('HMMA') for o in body)
            if (h, -len(body)) > (loop[0], -loop[1]):
                loop = (h, len(body))
    ins = [op for _, op, _ in ins]
    c = collections.Counter(i.split('.')[0] for i in ins)
    name = re.sub(r'^_Z\d+', '', k).split('ILi')[0] + '<' + re.search(r'ILi(\d+)', k).group(1) + '>'
    gaps, n, ex = [], 0, 0
    for i in ins:
        if i.startswith('HMMA'):
            if ex:
                gaps.append('%d/%d' % (n, ex))
            n = ex = 0
        else:
            n += 1
            ex += i.startswith('MUFU.EX2')
    print("%-34s %6d %5d %5d %5d %5d %5d %5d  %s" % (name, len(ins), loop[1], c['HMMA'], c['LDSM'], c['MUFU'],
                                                     c['BSSY'], c['BRA'], ' '.join(gaps[:8])))
PY
