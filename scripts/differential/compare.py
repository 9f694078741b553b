"""The comparison loop the seeded differential scripts share: runs each seed against the
peer and against Omnibus, prints the first answer that differs per seed (with the steps before
it when asked), and stops after `stop_after` differing seeds.

    compare(run, peer="rabbitmq")             # run(address, seed, length) -> list of answers
    await compare_async(run, peer="nats-server")

Arguments come from the command line: PEER OMNIBUS FIRST COUNT LENGTH [v].
"""
import asyncio
import sys


def _arguments(convert):
    peer, omnibus = convert(sys.argv[1]), convert(sys.argv[2])
    first, count, length = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    return peer, omnibus, range(first, first + count), length, len(sys.argv) > 6


def _report(seed, expected, answered, peer, verbose):
    width = max(len(peer), len("omnibus"))
    for i, (p, q) in enumerate(zip(expected, answered)):
        if p != q:
            print(f"seed {seed} item {i}:\n  {peer:<{width}} {p}\n  {'omnibus':<{width}} {q}")
            if verbose:
                for k in range(i):
                    print("    ", expected[k])
            return


def compare(run, peer, convert=int, stop_after=8):
    async def run_async(address, seed, length):
        return run(address, seed, length)

    asyncio.run(compare_async(run_async, peer, convert, stop_after))


async def compare_async(run, peer, convert=str, stop_after=8):
    peer_address, omnibus, seeds, length, verbose = _arguments(convert)
    bad = 0
    for seed in seeds:
        expected, answered = await run(peer_address, seed, length), await run(omnibus, seed, length)
        if expected != answered:
            bad += 1
            _report(seed, expected, answered, peer, verbose)
            if bad >= stop_after:
                break
    print("done", bad)
