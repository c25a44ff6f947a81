# Shared by the bench scripts: BENCHMARKS.md is made of sections between
# `<!-- NAME:begin -->` and `<!-- NAME:end -->` markers, each written by one script.

# write_section NAME TEXT: replaces section NAME in BENCHMARKS.md with TEXT (which carries its
# markers), or appends it.
write_section() {
  touch BENCHMARKS.md
  python3 - "$1" "$2" <<'PY'
import re, sys
name, section = sys.argv[1], sys.argv[2]
text = open("BENCHMARKS.md").read()
pattern = re.compile(r"<!-- %s:begin -->.*?<!-- %s:end -->" % (re.escape(name), re.escape(name)), re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
open("BENCHMARKS.md", "w").write(text)
PY
}

# marked_sections: every marked section of BENCHMARKS.md, in order (for a script that rewrites
# the rest of the file).
marked_sections() {
  [ -f BENCHMARKS.md ] || return 0
  python3 -c '
import re
text = open("BENCHMARKS.md").read()
print("\n\n".join(m.group(0) for m in re.finditer(r"<!-- ([\w-]+):begin -->.*?<!-- \1:end -->", text, re.S)))'
}
