# A raw TLS client that tells a clean close (TLS close_notify, then EOF) from a
# bare TCP close, which Python reports only with suppress_ragged_eofs=False.
# argv: port, ms between chunks, then the chunks to send (latin-1); it reads
# the answer only after sending them all. A chunk written @N is N bytes of 'x'.
import json, socket, ssl, sys, time

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s = ctx.wrap_socket(raw, server_hostname='localhost', suppress_ragged_eofs=False)
sent = 0
for i, chunk in enumerate(sys.argv[3:]):
    if i > 0:
        time.sleep(int(sys.argv[2]) / 1000)
    try:
        s.sendall(b'x' * int(chunk[1:]) if chunk.startswith('@') else chunk.encode('latin-1'))
        sent += 1
    except OSError:
        break
got = b''
end = 'close_notify'
try:
    while True:
        data = s.recv(65536)
        if not data:
            break
        got += data
except ssl.SSLEOFError:
    end = 'bare EOF'
except (ConnectionResetError, ssl.SSLError) as e:
    end = type(e).__name__
print(json.dumps({'answer': got.decode('latin-1'), 'end': end, 'sent': sent}))
