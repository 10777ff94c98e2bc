# The genmodels app on CPU: docker build -t genmodels . && docker run -p 8501:8501 genmodels
FROM python:3.11-slim

WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 GENMODELS_DATA=/app/data
# A public demo: hosted mode (README, "Hosting"): no local folders, Hub repos size-checked before download into a
# bounded cache, capped compute, no error details in the browser.
ENV GENMODELS_HOSTED=1 STREAMLIT_CLIENT_SHOW_ERROR_DETAILS=none HF_HUB_CACHE=/app/hub-cache

# CPU-only torch first (about 200 MB instead of several GB); requirements.txt then keeps it.
RUN pip install torch==2.9.1 torchvision==0.24.1 --index-url https://download.pytorch.org/whl/cpu
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY genmodels/ genmodels/
COPY train/ train/
COPY app_pages/ app_pages/
COPY checkpoints/ checkpoints/
COPY streamlit_app.py .
COPY .streamlit/ .streamlit/

# The pages that need test images download MNIST into $GENMODELS_DATA on first use;
# mount a folder with MNIST/raw there to run offline: -v /path/to/data:/app/data
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=4)"
CMD ["streamlit", "run", "streamlit_app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true", "--browser.gatherUsageStats=false"]
