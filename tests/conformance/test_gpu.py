"""pixvox.conformance.gpu: which upstream test bodies need a CUDA GPU, on hand-written bodies."""

from __future__ import annotations

import pytest

from pixvox.conformance.gpu import CPU_THEN_GPU, GPU_ONLY, UNGUARDED, classify, classify_source

CASES = {
    "guard first": (
        '''
        def test(self):
            """doc"""
            print("x")
            if not torch.cuda.is_available():
                return
            x = torch.zeros(1).cuda()
        ''',
        GPU_ONLY,
    ),
    "cpu part, then guarded gpu part": (
        """
        def test(self):
            y = conv(x)
            if not torch.cuda.is_available():
                return
            x = x.to("cuda")
        """,
        None,
    ),
    "device keyword": (
        """
        def test(self):
            x = SparseTensor(f, coordinates=c, device="cuda")
        """,
        UNGUARDED,
    ),
    "cuda tensor type": (
        """
        def test(self):
            t = torch.cuda.DoubleTensor([[0, 1]])
        """,
        UNGUARDED,
    ),
    "cuda method before the guard": (
        """
        def test(self):
            net = net.cuda()
            if not torch.cuda.is_available():
                return
        """,
        UNGUARDED,
    ),
    "device chosen by availability": (
        """
        def test(self):
            device = "cuda" if torch.cuda.is_available() else "cpu"
            if torch.cuda.is_available():
                y = x.to("cuda:0")
            self.assertTrue(ME.is_cuda_available() == torch.cuda.is_available())
        """,
        None,
    ),
    "else branch uses cuda": (
        """
        def test(self):
            if torch.cuda.is_available():
                pass
            else:
                y = x.cuda()
        """,
        UNGUARDED,
    ),
    "integer device index": (
        """
        def test(self):
            x = SparseTensor(feats, coords, device=0)
        """,
        UNGUARDED,
    ),
    "cpu part, then unguarded gpu part": (
        """
        def test(self):
            y = pool(SparseTensor(feats, coords))
            x = SparseTensor(feats, coords, device=0)
        """,
        CPU_THEN_GPU,
    ),
    "the engine's own guard": (
        """
        def test(self):
            print("x")
            if not ME.is_cuda_available():
                return
            x = x.cuda()
        """,
        GPU_ONLY,
    ),
    "cpu part, then the engine's guard": (
        """
        def test(self):
            y = conv(x)
            if not ME.is_cuda_available():
                return
            x = x.to("cuda")
        """,
        None,
    ),
    "to an integer device": (
        """
        def test(self):
            net = nn.Sequential(a, b).to(0)
        """,
        UNGUARDED,
    ),
    "to a dtype and other integers": (
        """
        def test(self):
            x = y.to(torch.float64)
            z = f(x, 0, device="cpu", stride=2)
        """,
        None,
    ),
    "plain cpu": (
        """
        def test(self):
            self.assertEqual(len(x), 3)
        """,
        None,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_classify_source(name):
    source, expected = CASES[name]
    assert classify_source(source) == expected


def test_classify_reads_a_function_object():
    def needs_gpu():
        return torch.zeros(1, device="cuda")  # noqa: F821 - never called

    def cpu_only():
        return 1

    assert classify(needs_gpu) == UNGUARDED
    assert classify(cpu_only) is None
    with pytest.raises(ValueError, match="one function"):
        classify_source("x = 1\n")
