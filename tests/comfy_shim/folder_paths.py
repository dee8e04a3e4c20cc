"""Shim of ComfyUI's folder_paths with a models, input and temp folder under a test directory."""

import os
import tempfile

_root = tempfile.mkdtemp(prefix="gid-shim-")
models_dir = os.path.join(_root, "models")
folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {}


def get_input_directory():
    path = os.path.join(_root, "input")
    os.makedirs(path, exist_ok=True)
    return path


def get_temp_directory():
    path = os.path.join(_root, "temp")
    os.makedirs(path, exist_ok=True)
    return path


def get_filename_list(folder_name):
    paths, extensions = folder_names_and_paths[folder_name]
    names = set()
    for path in paths:
        if os.path.isdir(path):
            for name in os.listdir(path):
                if os.path.splitext(name)[1] in extensions:
                    names.add(name)
    return sorted(names)


def get_full_path(folder_name, filename):
    for path in folder_names_and_paths.get(folder_name, ([], set()))[0]:
        candidate = os.path.join(path, filename)
        if os.path.isfile(candidate):
            return candidate
    return None
