-- Adds the Bearer key (from FLW_KEY) to every request.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("FLW_KEY")
