"""The kernel's stdout and stderr for kernelgate: output is never dropped, and a large write leaves as
several moderate messages.

ipykernel sends whatever was written within 0.2 s as one message, so `print("x" * 10**9)` would be a
single 1 GB message. The gateway refuses messages over its size limit; split here, honest output of any
size arrives whole and the gateway keeps the head and the tail it is configured to keep.

iopub is an XPUB socket that drops messages once 1000 wait for a slow reader: with NODROP it waits for
the gateway instead, so a flood slows down rather than losing its end (what waits counts against the
sandbox's own memory limit).
"""

import zmq
from ipykernel.iostream import OutStream

_CHUNK = 256 * 1024  # characters per message


class ChunkedOutStream(OutStream):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        socket = self.pub_thread.socket
        # Sockets belong to their thread: set the option from the thread that sends.
        self.pub_thread.schedule(lambda: socket.setsockopt(zmq.XPUB_NODROP, 1))

    def _flush_buffers(self):
        for parent, data in super()._flush_buffers():
            for start in range(0, len(data), _CHUNK):
                yield parent, data[start : start + _CHUNK]
