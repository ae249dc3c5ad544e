-- POST /v3/payments with a fixed body; the key comes from FLW_KEY.
wrk.method = "POST"
wrk.body = '{"tx_ref":"bench-pay","amount":"7500.50","currency":"NGN","redirect_url":"https://shop.example/return","customer":{"email":"buyer@example.com"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("FLW_KEY")
