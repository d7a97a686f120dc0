#!/usr/bin/env python3
"""Lists production C/C++ functions longer than a limit (default 80 lines, body braces included).

A function may be longer when a comment within the three lines above its first line says why, starting
with "long:" (e.g. "// long: one table of every route, read top to bottom"). Production code is every
.c/.cc/.cpp/.h/.hpp under the library and tool folders; tests, benchmarks and examples are not.
Exit status 1 when a function is over the limit without a reason.

  scripts/check-function-length.py [ROOT] [--limit N] [--list]
"""
import os
import re
import sys

DIRS = ["common", "protocol", "privacy", "secagg", "net", "client", "federation", "server", "sdk", "tools"]
SCOPE_WORDS = re.compile(r"^\s*(template\s*<.*>\s*)?(namespace|extern\s+\"C\"|class|struct|union|enum)\b")


def strip(text):
    """Blanks out comments, string and character literals, keeping newlines and offsets."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(")" + (m.group(1) if m else "") + '"', i)
            j = n if end < 0 else end + len(m.group(1) if m else "") + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else c); i = j
        else:
            out.append(c); i += 1
    # Preprocessor lines are not code here (#ifdef __cplusplus around extern "C" {).
    return re.sub(r"(?m)^[ \t]*#.*$", lambda m: " " * len(m.group(0)), "".join(out))


def functions(text):
    """Yields (first_line, last_line, header) of every outermost function body."""
    code = strip(text)
    stack, header_start = [], 0
    for i, c in enumerate(code):
        if c == "{":
            header = code[header_start:i]
            inside_fn = any(kind == "fn" for kind, _ in stack)
            if inside_fn:
                kind = "inner"
            elif SCOPE_WORDS.search(header.split(";")[-1]) and "(" not in header.split(";")[-1].split("{")[-1].split("=")[0] or re.search(r"=\s*$", header):
                kind = "scope"
            elif ")" in header:
                kind = "fn"
            else:
                kind = "scope"
            first = code.count("\n", 0, header_start + len(header) - len(header.lstrip())) + 1
            stack.append((kind, first))
            header_start = i + 1
        elif c == "}":
            if stack:
                kind, first = stack.pop()
                if kind == "fn":
                    yield first, code.count("\n", 0, i) + 1, text.splitlines()[first - 1].strip()
            header_start = i + 1
        elif c == ";" and not any(kind == "fn" for kind, _ in stack):
            header_start = i + 1


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    limit = 80
    if "--limit" in sys.argv:
        limit = int(sys.argv[sys.argv.index("--limit") + 1])
        args = [a for a in args if a != str(limit)]
    root = args[0] if args else os.path.join(os.path.dirname(__file__), "..")
    bad = 0
    for d in DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for f in sorted(files):
                if not f.endswith((".c", ".cc", ".cpp", ".h", ".hpp")):
                    continue
                path = os.path.join(dirpath, f)
                text = open(path, encoding="utf-8", errors="replace").read()
                lines = text.splitlines()
                for first, last, head in functions(text):
                    length = last - first + 1
                    if length <= limit and "--list" not in sys.argv:
                        continue
                    above = "\n".join(lines[max(0, first - 4):first + 2])
                    reason = re.search(r"//\s*long:", above)
                    rel = os.path.relpath(path, root)
                    if "--list" in sys.argv:
                        print(f"{length:5d} {rel}:{first} {head[:80]}")
                    elif not reason:
                        print(f"{rel}:{first}: {length} lines: {head[:100]}")
                        bad += 1
    if "--list" not in sys.argv:
        print(f"{bad} function(s) over {limit} lines without a 'long:' reason")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
