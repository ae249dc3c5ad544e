<?php
// A small shop that takes payments through Sika, with nothing beyond PHP's standard library.
// Run it with PHP's built-in server:  php -S 127.0.0.1:8000 shop.php
//
//   GET  /buy?amount=2500.00&currency=NGN  creates a checkout, sends the customer to it (303)
//   POST /sika/notifications               Sika's signed notification: verified, then acted on
//   GET  /orders/<reference>               the order as the shop knows it (status read from Sika)
//
// Environment: SIKA_URL (https://…), SIKA_API_KEY, SIKA_NOTIFY_SECRET (whsec_…), SIKA_CA_FILE
// (only for a self-signed Sika, e.g. the demo's DIR/tls/cert.pem), SHOP_ORDERS (a directory;
// PHP forgets everything between requests, so orders are files here: a real shop uses its database).
declare(strict_types=1);

const TOLERANCE_SECONDS = 300;

function env(string $name): string
{
    $v = getenv($name);
    if ($v === false || $v === '') {
        throw new RuntimeException("$name is not set");
    }
    return $v;
}

/** One call to Sika's API: [status, decoded JSON]. */
function sika(string $method, string $path, ?array $body = null): array
{
    $ssl = ['verify_peer' => true, 'verify_peer_name' => true];
    if (getenv('SIKA_CA_FILE')) {
        $ssl['cafile'] = getenv('SIKA_CA_FILE');
    }
    $context = stream_context_create([
        'http' => [
            'method' => $method,
            'header' => "Authorization: Bearer " . env('SIKA_API_KEY') . "\r\nContent-Type: application/json\r\n",
            'content' => $body === null ? '' : json_encode($body),
            'ignore_errors' => true,
            'timeout' => 30,
        ],
        'ssl' => $ssl,
    ]);
    $text = file_get_contents(rtrim(env('SIKA_URL'), '/') . $path, false, $context);
    if ($text === false) {
        throw new RuntimeException('Sika did not answer');
    }
    preg_match('{HTTP/\S+ (\d{3})}', $http_response_header[0] ?? '', $m);
    return [(int) ($m[1] ?? 0), json_decode($text, true)];
}

/** Sika-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>. */
function verify(string $header, string $body): bool
{
    $parts = [];
    foreach (explode(',', $header) as $p) {
        [$k, $v] = array_pad(explode('=', $p, 2), 2, '');
        $parts[$k] = $v;
    }
    if (!isset($parts['t']) || !ctype_digit($parts['t']) || abs(time() - (int) $parts['t']) > TOLERANCE_SECONDS) {
        return false; // too old (or from the future): a replay
    }
    $expected = hash_hmac('sha256', $parts['t'] . '.' . $body, env('SIKA_NOTIFY_SECRET'));
    return hash_equals($expected, $parts['v1'] ?? '');
}

function reply(int $status, array $body = [], ?string $location = null): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    if ($location !== null) {
        header('Location: ' . $location);
    }
    echo json_encode($body === [] ? new stdClass() : $body);
}

function order_file(string $reference): string
{
    return env('SHOP_ORDERS') . '/' . hash('sha256', $reference) . '.json';
}

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$method = $_SERVER['REQUEST_METHOD'];

if ($method === 'GET' && $path === '/buy') {
    $reference = 'php-' . bin2hex(random_bytes(8));
    [$status, $checkout] = sika('POST', '/api/v1/checkouts', [
        'reference' => $reference,
        'amount' => $_GET['amount'] ?? '2500.00',
        'currency' => $_GET['currency'] ?? 'NGN',
        'customer' => ['email' => $_GET['email'] ?? 'customer@example.com'],
    ]);
    if ($status !== 200 && $status !== 201) {
        reply(502, ['error' => $checkout]);
        return;
    }
    file_put_contents(order_file($reference), json_encode(['status' => 'pending', 'notified' => []]), LOCK_EX);
    reply(303, ['reference' => $reference], $checkout['checkout_url']);
} elseif ($method === 'GET' && str_starts_with($path, '/orders/')) {
    $reference = rawurldecode(substr($path, strlen('/orders/')));
    $file = order_file($reference);
    if (!is_file($file)) {
        reply(404);
        return;
    }
    $order = json_decode((string) file_get_contents($file), true);
    // Sika's word is the truth: read the status, never trust the redirect's query string.
    [, $checkout] = sika('GET', '/api/v1/checkouts/' . rawurlencode($reference));
    reply(200, ['reference' => $reference, 'status' => $checkout['status'] ?? null, 'notified' => $order['notified']]);
} elseif ($method === 'POST' && $path === '/sika/notifications') {
    $body = (string) file_get_contents('php://input');
    if (!verify($_SERVER['HTTP_SIKA_SIGNATURE'] ?? '', $body)) {
        reply(400, ['error' => 'bad signature']);
        return;
    }
    $event = json_decode($body, true);
    $file = order_file((string) ($event['reference'] ?? ''));
    if (is_file($file)) {
        $f = fopen($file, 'r+');
        flock($f, LOCK_EX);
        $order = json_decode((string) stream_get_contents($f), true);
        if (!in_array($event['id'], $order['notified'], true)) { // each event once
            $order['notified'][] = $event['id'];
            $order['status'] = $event['status']; // e.g. ship the goods when "paid"
            ftruncate($f, 0);
            rewind($f);
            fwrite($f, json_encode($order));
        }
        flock($f, LOCK_UN);
        fclose($f);
    }
    reply(200);
} else {
    reply(404);
}
