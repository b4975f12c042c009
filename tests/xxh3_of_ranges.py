#!/usr/bin/python3
"""Print the XXH3-64 (seed 0) of byte ranges of a file, one lowercase
16-digit hex line per range, in the order given.

usage: xxh3_of_ranges.py FILE OFFSET:LENGTH...

test_fixtures compares these with ckptbench's own tensor hashes, so the
hashes are checked against an independent implementation (Debian's
python3-xxhash). Exit status 1 when a range runs past the end of the file,
2 on a usage error.
"""
import sys

import xxhash


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        for spec in argv[2:]:
            try:
                offset, length = (int(part) for part in spec.split(":"))
            except ValueError:
                print(f"xxh3_of_ranges.py: bad range {spec!r}", file=sys.stderr)
                return 2
            f.seek(offset)
            data = f.read(length)
            if len(data) != length:
                print(f"xxh3_of_ranges.py: {argv[1]}: range {spec} runs past the end",
                      file=sys.stderr)
                return 1
            print(xxhash.xxh3_64_hexdigest(data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
