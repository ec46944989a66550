"""labpnn: instrument control and experiment orchestration for physical neural networks.

Importing this package is cheap on purpose: the CLI must answer ``--help`` in well
under a second, so heavy libraries (torch, qcodes, PyQt6, h5py) are imported by the
modules that need them, never here.
"""

__version__ = "0.1.0"
FORMAT_VERSION = 1
