"""Cameras (``labpnn.drivers.camera``): one base class, thin SDK back-ends.

* :class:`GenICamCamera` - any GenICam camera through harvesters and a GenTL producer;
* :class:`BaslerCamera` - Basler cameras through pypylon (and pylon's camera emulator).

Both share :class:`Camera`'s settings (exposure, gain, ROI, pixel format, timeout, with
lab limits), software triggering and exposure timing. SDKs are imported only when a
camera is opened, so this package imports without them.
"""

from labpnn.drivers.camera.base import Camera
from labpnn.drivers.camera.basler import BaslerCamera
from labpnn.drivers.camera.genicam import GenICamCamera

__all__ = ["BaslerCamera", "Camera", "GenICamCamera"]
