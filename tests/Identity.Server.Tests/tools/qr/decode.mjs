// Reads a PNG (base64 on stdin) and prints the text of the QR code in it.
import jsQR from 'jsqr';
import { PNG } from 'pngjs';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const png = PNG.sync.read(Buffer.from(input.trim(), 'base64'));
const code = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
if (!code) { console.error('no QR code found'); process.exit(1); }
process.stdout.write(code.data);
