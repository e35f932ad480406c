import { ErrorCode, isTickwireError } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BOTS,
  DEFAULT_DURATION_S,
  isUsageError,
  parseLoadtestArgs,
  USAGE,
} from './args.js';

const options = (argv: string[]) => {
  const command = parseLoadtestArgs(argv);
  if (command.help) throw new Error('expected options, got help');
  return command.options;
};

/** The usage error `argv` is refused with. */
const refusal = (argv: string[]) => {
  try {
    parseLoadtestArgs(argv);
  } catch (error) {
    expect(isUsageError(error)).toBe(true);
    expect(isTickwireError(error) && error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    return (error as Error).message;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
};

describe('parseLoadtestArgs', () => {
  it('reads every option, in both --name value and --name=value forms', () => {
    expect(
      options([
        '--bots',
        '200',
        '--duration=20',
        '--transport',
        'udp',
        '--room-size',
        '8',
        '--ramp',
        '25',
        '--seed',
        '7',
      ]),
    ).toEqual({
      bots: 200,
      durationMs: 20_000,
      transport: 'udp',
      roomSize: 8,
      rampPerSecond: 25,
      seed: 7,
    });
  });

  it('defaults to a short quick-play run over the in-process server', () => {
    expect(options([])).toEqual({ bots: DEFAULT_BOTS, durationMs: DEFAULT_DURATION_S * 1000 });
  });

  it('takes fractional durations and the upper bounds', () => {
    expect(options(['--bots', '5000', '--duration', '600'])).toMatchObject({
      bots: 5000,
      durationMs: 600_000,
    });
    expect(options(['--duration', '2.5']).durationMs).toBe(2500);
  });

  it('answers -h and --help with the usage text', () => {
    expect(parseLoadtestArgs(['-h'])).toEqual({ help: true });
    expect(parseLoadtestArgs(['--bots', '3', '--help'])).toEqual({ help: true });
    for (const option of ['--bots', '--duration', '--transport', '--url', '--room-size'])
      expect(USAGE).toContain(option);
  });

  it.each([
    [['--bots', '0'], /--bots must be an integer in \[1, 5000\], got 0/],
    [['--bots', '5001'], /--bots must be an integer in \[1, 5000\], got 5001/],
    [['--bots', '1.5'], /--bots must be an integer, got '1.5'/],
    [['--bots', 'many'], /--bots must be an integer, got 'many'/],
    [['--bots', ''], /--bots must be an integer, got ''/],
    [['--duration', '0'], /--duration must be a number of seconds in \(0, 600\], got 0/],
    [['--duration', '601'], /--duration must be a number of seconds in \(0, 600\], got 601/],
    [['--duration', '-5'], /--duration/],
    [['--duration', 'Infinity'], /--duration must be a number, got 'Infinity'/],
    [['--transport', 'quic'], /--transport must be one of ws, tcp, udp, got 'quic'/],
    [['--room-size', '17'], /--room-size must be an integer in \[1, 16\]/],
    [['--room-size', '0'], /--room-size/],
    [['--ramp', '0'], /--ramp must be a number in \(0, 10000\], got 0/],
    [['--seed', 'x'], /--seed must be an integer/],
    [['--bot', '5'], /Unknown option '--bot'/],
    [['--bots'], /--bots/],
    [['200'], /positional|Unexpected argument/i],
  ])('refuses %j', (argv, message) => {
    expect(refusal(argv)).toMatch(message);
  });
});

describe('--url', () => {
  it('maps the demo server URL to the transport port, as `pnpm serve` opens them', () => {
    expect(options(['--url', 'http://127.0.0.1:8080'])).toMatchObject({
      url: 'http://127.0.0.1:8080',
    });
    expect(options(['--url', 'http://localhost:8080', '--transport', 'tcp']).url).toBe(
      'http://localhost:8080',
    );
  });

  it.each([
    'http://127.0.0.1:8080',
    'http://localhost:9000/',
    'http://[::1]:8080',
    'ws://127.0.0.1:8080',
    'tcp://localhost:8081',
    'udp://[::1]:8082',
  ])('accepts the loopback URL %s', (url) => {
    expect(options(['--url', url]).url).toBe(url);
  });

  it.each([
    'http://10.0.0.7:8080',
    'http://192.168.1.20:8080',
    'ws://example.com:8080',
    'http://127.0.0.1.example.com:8080',
    'http://[2001:db8::1]:8080',
    'http://0.0.0.0:8080',
  ])('refuses %s: not this machine', (url) => {
    expect(refusal(['--url', url])).toMatch(
      /--url must name this machine \(127\.0\.0\.1, ::1, localhost\): a load test is not for servers elsewhere/,
    );
  });

  it.each([
    [['--url', 'not a url'], /--url must be a URL like http:\/\/127\.0\.0\.1:8080/],
    [['--url', 'http://127.0.0.1'], /--url needs an explicit port/],
    [
      ['--url', 'ftp://127.0.0.1:21'],
      /--url must start with http:\/\/, ws:\/\/, tcp:\/\/ or udp:\/\//,
    ],
    [
      ['--url', 'tcp://127.0.0.1:8081', '--transport', 'udp'],
      /tcp:\/\/ URL but --transport is udp/,
    ],
  ])('refuses %j', (argv, message) => {
    expect(refusal(argv)).toMatch(message);
  });
});
