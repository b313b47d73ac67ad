"""Regression: "Run All" must not hang when a cell uses run_sync.

``nest_asyncio.apply()`` followed by ``asyncio.run`` in a cell makes every later cell of a
Run All hang on ipykernel 7. nbimgprep runs coroutines on a private loop thread instead;
this test sends cells to a real kernel back-to-back, as Run All does, and asserts that
every one of them replies.
"""

from __future__ import annotations

from pathlib import Path

from jupyter_client.manager import start_new_kernel


def test_every_cell_replies_after_a_run_sync_cell(tmp_path: Path, testdata: Path) -> None:
    cells = [
        "import asyncio, nbimgprep\nfrom nbimgprep import Processor",
        f"proc = Processor('local', cache_dir={str(tmp_path)!r})",
        f"r = proc.run_sync('upscale', {str(testdata / 'chelsea.png')!r}); r.cache_hit",
        f"r2 = await proc.run('upscale', {str(testdata / 'chelsea.png')!r}); r2.cache_hit",
        f"proc.run_sync('upscale', {str(testdata / 'chelsea.png')!r}).cache_hit",
        "await asyncio.sleep(0); 'after'",
        "1 + 1",
    ]
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        ids = [kc.execute(code) for code in cells]  # all sent before any reply, like Run All
        replies = {}
        while len(replies) < len(ids):
            msg = kc.get_shell_msg(timeout=60)
            parent = msg["parent_header"].get("msg_id")
            if parent in ids:  # start_new_kernel's own kernel_info reply may come late
                replies[parent] = msg["content"]
        assert [replies[i]["status"] for i in ids] == ["ok"] * len(cells)
        results = {}
        while True:
            msg = kc.get_iopub_msg(timeout=5)
            if msg["msg_type"] == "execute_result":
                results[msg["parent_header"]["msg_id"]] = msg["content"]["data"]["text/plain"]
            if (
                msg["msg_type"] == "status"
                and msg["parent_header"].get("msg_id") == ids[-1]
                and msg["content"]["execution_state"] == "idle"
            ):
                break
        assert [results.get(i) for i in ids[2:]] == ["False", "True", "True", "'after'", "2"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
