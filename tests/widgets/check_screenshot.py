#!/usr/bin/env python3
"""Checks that a screenshot (binary PPM, P6) is not blank, and writes a PNG copy.

A screenshot counts as blank when it has fewer than MIN_COLOURS distinct colours, or when
one colour covers more than MAX_DOMINANT of it (an empty Xvfb screen is a single colour;
a window that failed to paint is one or two flat greys). Standard library only.

usage: check_screenshot.py SHOT.ppm [PNG_OUT]      exit 0: not blank, 1: blank or unreadable
       check_screenshot.py --blank PATH.ppm        write a uniform 1280x800 PPM (self-test)
"""
import collections
import struct
import sys
import zlib

MIN_COLOURS = 32
MAX_DOMINANT = 0.90


def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    tokens = []
    pos = 0
    while len(tokens) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            while data[pos:pos + 1] not in (b"\n", b""):
                pos += 1
            continue
        start = pos
        while not data[pos:pos + 1].isspace():
            pos += 1
        tokens.append(data[start:pos])
    pos += 1  # the single whitespace after maxval
    if tokens[0] != b"P6" or int(tokens[3]) != 255:
        raise ValueError("not an 8-bit binary PPM")
    width, height = int(tokens[1]), int(tokens[2])
    pixels = data[pos:pos + width * height * 3]
    if len(pixels) != width * height * 3:
        raise ValueError("truncated PPM")
    return width, height, pixels


def write_png(path, width, height, pixels):
    rows = b"".join(b"\x00" + pixels[y * width * 3:(y + 1) * width * 3] for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(rows, 6)))
        f.write(chunk(b"IEND", b""))


def main(argv):
    if len(argv) == 3 and argv[1] == "--blank":
        with open(argv[2], "wb") as f:
            f.write(b"P6\n1280 800\n255\n" + bytes(1280 * 800 * 3))
        return 0
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        width, height, pixels = read_ppm(argv[1])
    except (OSError, ValueError, IndexError) as error:
        print(f"check_screenshot: {argv[1]}: {error}", file=sys.stderr)
        return 1
    counts = collections.Counter(pixels[i:i + 3] for i in range(0, len(pixels), 3))
    total = width * height
    colour, dominant = counts.most_common(1)[0]
    share = dominant / total
    print(f"check_screenshot: {width}x{height}, {len(counts)} distinct colours, "
          f"most common #{colour.hex()} covers {share:.1%}")
    if len(argv) == 3:
        write_png(argv[2], width, height, pixels)
    if len(counts) < MIN_COLOURS or share > MAX_DOMINANT:
        print("check_screenshot: the screenshot is blank", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
