#!/usr/bin/env python3
"""Binary-aware masking for tests/cases/binary.cases (run after record.py).

record.py masks volatile values line by line, which cannot work for binary
replies. This walks each recorded binary reply packet by packet and, for the
packets below, replaces the value with `{*}` and the low byte of the body
length with `{*}` (the value length varies; the three high bytes stay
literal). A byte that is CR or LF cannot be matched by `{*}` and is left
literal (then noted on stderr).

  * Version (opcode 0x0b) success: the version string.
  * Stat (opcode 0x10) packets named in STAT_MASKS: the same stats record.py
    masks in text replies, plus the layout stats golden.rs relaxes for
    rustcached (its relax_layout is text-only).

Usage: mask_binary.py tests/cases/binary.cases   (rewrites it in place)
"""
import re, struct, sys, os

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
REC = '/work/main/tests/cases'
sys.path.insert(0, REC)
from record import unescape, escape  # noqa: E402

STAT_MASKS = re.compile(
    rb'^(pid|uptime|time|version|libevent|rusage_user|rusage_system'
    rb'|hash_bytes|response_obj_bytes|response_obj_count|read_buf_count|read_buf_bytes|read_buf_bytes_free'
    rb'|lru_maintainer_juggles|lru_crawler_starts'
    rb'|moves_to_cold|moves_to_warm|moves_within_lru|crawler_items_checked|crawler_reclaimed|reclaimed'
    rb'|expired_unfetched|get_expired|get_flushed|lrutail_reflocked'
    rb'|tcpport'
    rb'|bytes|hash_power_level|total_malloced|connection_structures)$')

def segments(data):
    """Split a binary reply into literal bytes / None (= wildcard)."""
    segs, i = [], 0
    while i + 24 <= len(data) and data[i] == 0x81:
        _m, op, kl, el, _dt, st, bl, _o, _c = struct.unpack('>BBHBBHIIQ', data[i:i + 24])
        end = i + 24 + bl
        if end > len(data):
            break
        key = data[i + 24 + el:i + 24 + el + kl]
        vstart = i + 24 + el + kl
        value = data[vstart:end]
        mask = st == 0 and ((op == 0x0b) or (op == 0x10 and kl and STAT_MASKS.match(key)))
        if mask:
            low = data[i + 11]
            segs.append(data[i:i + 11])
            if low in (0x0a, 0x0d):
                print('note: body length byte %#x of %r left literal' % (low, key or b'version'), file=sys.stderr)
                segs.append(bytes([low]))
            else:
                segs.append(None)
            segs.append(data[i + 12:vstart])
            if b'\r' in value or b'\n' in value:
                segs.append(value)
            else:
                segs.append(None)
        else:
            segs.append(data[i:end])
        i = end
    segs.append(data[i:])
    return segs

def render(segs):
    return ''.join('{*}' if s is None else escape(s) for s in segs)

def main(path):
    lines = open(path, encoding='utf-8').read().split('\n')
    out, masked = [], 0
    for n, line in enumerate(lines):
        if line.startswith('recv: ') and line != 'recv: ':
            raw = line[6:]
            if '{*}' in raw:
                raise SystemExit('%s:%d already masked' % (path, n + 1))
            segs = segments(unescape(raw, '%s:%d' % (path, n + 1)))
            masked += segs.count(None)
            line = 'recv: ' + render(segs)
        out.append(line)
    # Say so right under record.py's header.
    note = ('# Then masked by tests/cases/binary_mask.py (binary-aware; record.py cannot mask binary): version strings and volatile/layout stat values (value + low '
            'byte of the body length) are {*}.')
    if note not in out:
        k = next(i for i, l in enumerate(out) if not l.startswith('# GENERATED') and not l.startswith('# edit the'))
        out.insert(k, note)
    open(path, 'w', encoding='utf-8', newline='\n').write('\n'.join(out))
    print('masked %d spans in %s' % (masked, path), file=sys.stderr)

if __name__ == '__main__':
    main(sys.argv[1])
