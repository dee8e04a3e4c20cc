"""The helpers that judge a ComfyUI log and complete API-format graphs (no server needed)."""

from __future__ import annotations

import pytest

from .comfyui_server import log_problems, with_default_inputs

PACK_DIR = "/tmp/base/custom_nodes/ComfyUI-GID"

UNRELATED_MISSING_TORCHAUDIO = """\
Traceback (most recent call last):
  File "/opt/ComfyUI/nodes.py", line 2131, in load_custom_node
    module_spec.loader.exec_module(module)
  File "/opt/ComfyUI/comfy_extras/nodes_audio.py", line 4, in <module>
    import torchaudio
ModuleNotFoundError: No module named 'torchaudio'

Cannot import /opt/ComfyUI/comfy_extras/nodes_audio.py module for custom nodes: No module named 'torchaudio'

Import times for custom nodes:
   0.1 seconds: /tmp/base/custom_nodes/ComfyUI-GID
"""

OUR_IMPORT_FAILURE = f"""\
Traceback (most recent call last):
  File "/opt/ComfyUI/nodes.py", line 2131, in load_custom_node
    module_spec.loader.exec_module(module)
  File "{PACK_DIR}/nodes/motion.py", line 7, in <module>
    from ..gid_models.flow import DEFAULT_METHOD
ImportError: cannot import name 'DEFAULT_METHOD'

Cannot import {PACK_DIR} module for custom nodes: cannot import name 'DEFAULT_METHOD'

Import times for custom nodes:
   0.0 seconds (IMPORT FAILED): {PACK_DIR}
"""


def test_unrelated_missing_torchaudio_is_not_a_problem():
    assert log_problems(UNRELATED_MISSING_TORCHAUDIO, pack_markers=(PACK_DIR,)) == []


def test_our_import_failure_is_reported_with_its_traceback():
    problems = log_problems(OUR_IMPORT_FAILURE, pack_markers=(PACK_DIR,))
    assert any("DEFAULT_METHOD" in problem and problem.startswith("traceback") for problem in problems)
    assert any("IMPORT FAILED" in problem for problem in problems)
    assert any("Cannot import" in problem for problem in problems)


def test_default_inputs_fill_widgets_but_never_sockets():
    object_info = {
        "Node": {
            "input": {
                "required": {
                    "image": ["IMAGE", {"tooltip": "a socket"}],
                    "mode": [["fast", "exact"], {"default": "exact"}],
                    "count": ["INT", {"default": 3, "min": 1}],
                    "name": ["STRING", {}],
                    "file": ["COMBO", {"options": ["a.mp4", "b.mp4"]}],
                }
            }
        }
    }
    completed = with_default_inputs(object_info, "Node", {"image": ["1", 0]})
    assert completed == {"image": ["1", 0], "mode": "exact", "count": 3, "name": "", "file": "a.mp4"}
    with pytest.raises(KeyError, match="image"):
        with_default_inputs(object_info, "Node", {})
