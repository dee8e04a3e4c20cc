"""Scene engine (`gid scenes`): procedural plants in wind, rendered by Blender, with exact motion.

A training-time tool only: nothing in the nodes or the `gid animate` path imports it.
  compose.py      one seed -> a Scene (camera, sun, sky, wind, meshes, moving parts), pure numpy
  scenery.py      recipe 2: moving grass ground (cells), lakes, paths, mountains, outcrops, houses, clouds
  water.py        recipe 3: ripples sized in pixels, streams with boulders on their banks, pale boulders
  gorge.py        recipe 4: rocky banks close to the lens, weathered rock (moss, lichen, litter, crevices)
  bloom.py        recipe 5: big flower and seed heads close to the lens, some backlit
  geometry.py     mesh primitives;  plants.py  grass, reeds, flowers, trees, bushes
  oscillators.py  modal oscillators driven by travelling 1/f gusts, closed-form spectra
  render.py       runs blender/render_scene.py in Blender's Python (the `scenes` extra)
  motion.py       attribute pass + spectra -> exact pixel trajectories -> spectral volume
  engine.py       seeds -> shards, resumable, parallel;  cli.py  the `gid scenes` command
  validate.py     engine vs Blender rendering the moved scene (end-point error)
"""
