import io

from dfdf_train.progress import Progress


def test_progress_line_off_a_terminal():
    stream = io.StringIO()
    with Progress(10, "test", "videos", stream=stream, every_s=3600) as bar:
        for _ in range(10):
            bar.update(figures="loss 0.5")
    lines = stream.getvalue().splitlines()
    # the first update and the last; not one line per update, no repeat on close
    assert len(lines) == 2
    assert lines[-1].startswith("test: 10/10 (100%)") and "videos/s" in lines[-1]
    assert lines[-1].endswith("| loss 0.5")


def test_progress_without_a_total_and_disabled():
    stream = io.StringIO()
    with Progress(None, "open", "it", stream=stream) as bar:
        bar.update(3)
    assert stream.getvalue().splitlines()[-1].startswith("open: 3, ")
    quiet = io.StringIO()
    with Progress(5, "quiet", stream=quiet, enabled=False) as bar:
        bar.update(5)
    assert quiet.getvalue() == ""
