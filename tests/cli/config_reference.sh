# docs/config.md carries the key table `simpo_dist --config-reference` generates from src/config.c, verbatim: a key's
# help edited in one place and not the other fails here.
source "$(dirname "$0")/lib.bash"
"$BIN" --config-reference > "$TMP/ref.md" || bad "--config-reference failed"
n=$(grep -c '^| `' "$TMP/ref.md")
[ "$n" -gt 40 ] && ok "--config-reference lists $n keys" || bad "--config-reference lists $n keys"
python3 - "$TMP/ref.md" "$SRC/docs/config.md" <<'PY' && ok "docs/config.md holds the generated reference verbatim" \
  || bad "docs/config.md differs from --config-reference (regenerate its table from src/config.c)"
import sys
ref, doc = open(sys.argv[1]).read(), open(sys.argv[2]).read()
if ref not in doc:
    d = {l.split(" | ")[0]: l for l in doc.splitlines() if l.startswith("| `")}
    for l in ref.splitlines():
        if l.startswith("| `") and d.get(l.split(" | ")[0]) != l:
            print("differs:", l.split(" | ")[0])
    sys.exit(1)
PY
finish
