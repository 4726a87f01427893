"""The camera check in a browser: a static page (``assets/``) that scores camera frames and photos on
the device with onnxruntime-web, built by ``dpiqa-edge export --target web`` (``bundle.py``) and served
by ``dpiqa-edge serve`` (``serve.py``). ``browser.py`` drives headless Chromium for the tests and the
``web`` benchmark (``dpiqa_edge/bench/web.py``)."""
