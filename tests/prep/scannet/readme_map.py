"""The NYU40 → ScanNet-20 table of ../shared/data/README.md, written out independently of pixvox."""

README_MAP = {
    1: 0,
    2: 1,
    3: 2,
    4: 3,
    5: 4,
    6: 5,
    7: 6,
    8: 7,
    9: 8,
    10: 9,
    11: 10,
    12: 11,
    14: 12,
    16: 13,
    24: 14,
    28: 15,
    33: 16,
    34: 17,
    36: 18,
    39: 19,
}
