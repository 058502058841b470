#!/usr/bin/env python3
"""cu2cpp.py IN.cu OUT.cpp — rewrites a CUDA source for the CPU emulation (docs/gpu.md, "Without a GPU"):
kernel<<<grid, block[, smem[, stream]]>>>(args);  ->  emu_launch(emu_cfg(grid, block, smem, stream), [=]() { kernel(args); });
(the arguments captured by value, as a launch copies them: a launch on a late stream runs later, emu.cpp)
extern __shared__ [__align__(N)] T name[];        ->  T *name = (T *)emu_dyn_smem();  (the emulation's dynamic
                                                      shared memory is 1 KB aligned)
#include "x.cuh" (a header beside IN)       ->  its converted text, once (attn_launch.cuh launches kernels)
Everything else is left to the emulation headers (cuda_runtime.h, cublas_v2.h in this directory)."""
import os
import re
import sys


def match_paren(s, i, open_c, close_c):
    """index just past the bracket closing the one at s[i]"""
    depth = 0
    while i < len(s):
        if s[i] == open_c:
            depth += 1
        elif s[i] == close_c:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise SystemExit("cu2cpp: unbalanced %s" % open_c)


def kernel_name_start(s, i):
    """start of `name` or `name<targs>` ending at s[i] (exclusive)"""
    j = i
    if s[j - 1] == '>':  # template arguments
        depth = 0
        while True:
            j -= 1
            if s[j] == '>':
                depth += 1
            elif s[j] == '<':
                depth -= 1
                if depth == 0:
                    break
    while j > 0 and (s[j - 1].isalnum() or s[j - 1] == '_'):
        j -= 1
    return j


def convert(src):
    src = re.sub(r'extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s+)?(\w+(?:\s+\w+)*?)\s+(\w+)\s*\[\s*\]\s*;',
                 r'\1 *\2 = (\1 *)emu_dyn_smem();', src)
    out, pos = [], 0
    while True:
        i = src.find('<<<', pos)
        if i < 0:
            out.append(src[pos:])
            break
        k0 = kernel_name_start(src, i)
        j = src.find('>>>', i)
        cfg = src[i + 3:j]
        p = j + 3
        while src[p].isspace():
            p += 1
        if src[p] != '(':
            raise SystemExit("cu2cpp: no argument list after >>>")
        q = match_paren(src, p, '(', ')')
        out.append(src[pos:k0])
        out.append('emu_launch(emu_cfg(%s), [=]() { %s%s; })' % (cfg, src[k0:i], src[p:q]))
        pos = q
    return ''.join(out)


def inline_local(src, path, seen):
    """src with each `#include "x"` of a file beside path replaced by that file's text (the first time; later ones
    stay, and meet its include guard), #line marked, so that convert() sees the headers' launches too"""
    def repl(m):
        h = os.path.join(os.path.dirname(path), m.group(1))
        if h in seen or not os.path.isfile(h):
            return m.group(0)
        seen.add(h)
        with open(h) as f:
            text = inline_local(f.read(), h, seen)
        line = src.count('\n', 0, m.start()) + 2  # the line after the #include
        return '#line 1 "%s"\n%s\n#line %d "%s"' % (h, text, line, path)
    return re.sub(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"[^\n]*$', repl, src, flags=re.M)


if __name__ == '__main__':
    with open(sys.argv[1]) as f:
        text = inline_local(f.read(), sys.argv[1], set())
    with open(sys.argv[2], 'w') as f:
        f.write('#line 1 "%s"\n' % sys.argv[1])
        f.write(convert(text))
