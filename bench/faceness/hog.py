"""face_recognition's detector (dlib's HOG, one upsampling: its default) on the face-ness study's
photos at the same scales, for the reference row of results.md. Usage: hog.py OUT.csv SCALES PHOTO…
(scaled photos over 12 Mpx are skipped: HOG upsamples them to 48 Mpx)."""
import sys

import face_recognition
import numpy as np
from PIL import Image

out, scales, photos = sys.argv[1], [float(s) for s in sys.argv[2].split(",")], sys.argv[3:]
with open(out, "w") as f:
    f.write("file,scale,x0,y0,x1,y1\n")
    for photo in photos:
        full = Image.open(photo).convert("RGB")
        for s in scales:
            w, h = max(1, round(full.width * s)), max(1, round(full.height * s))
            if max(w, h) < 64 or w * h > 12_000_000:
                continue
            img = np.asarray(full.resize((w, h), Image.BILINEAR))
            for top, right, bottom, left in face_recognition.face_locations(img):
                f.write(f"{photo},{s},{left / s:.1f},{top / s:.1f},{(right + 1) / s:.1f},{(bottom + 1) / s:.1f}\n")
            f.flush()
        print(photo, file=sys.stderr)
