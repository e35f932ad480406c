// A dgram `lookup` that answers IP literals synchronously: node:dgram otherwise resolves every
// send's address through dns.lookup on the next tick, which costs a tick per datagram and lets a
// socket close before the last datagrams (the DISCONNECT copies) left.
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string,
  family: number,
) => void;

/** `lookup` option of `dgram.createSocket`: IP literals at once, host names through DNS. */
export function literalLookup(
  hostname: string,
  options: number | LookupOneOptions,
  callback: LookupCallback,
): void {
  const family = isIP(hostname);
  if (family !== 0) {
    callback(null, hostname, family);
    return;
  }
  const dnsOptions: LookupOneOptions = typeof options === 'number' ? { family: options } : options;
  dnsLookup(hostname, dnsOptions, callback);
}
