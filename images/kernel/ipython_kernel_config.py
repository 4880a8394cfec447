# IPython kernel settings for kernelgate sandboxes (read from the venv's etc/ipython).
c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

# Tracebacks are read as plain logs, as the hosted tool shows them: no ANSI colours.
c.InteractiveShell.colors = "nocolor"
# The root filesystem is read-only and state must not leak between sandboxes.
c.HistoryManager.enabled = False
# plt.show() and a figure left at the end of a cell become PNG display outputs.
c.InlineBackend.figure_formats = {"png"}
c.InlineBackend.rc = {"figure.dpi": 100}
# Large writes to stdout and stderr leave in 256 KiB messages (images/kernel/kernelgate_outstream.py).
c.IPKernelApp.outstream_class = "kernelgate_outstream.ChunkedOutStream"
