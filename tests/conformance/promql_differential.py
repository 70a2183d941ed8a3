#!/usr/bin/env python3
"""Differential test of our PromQL engine against promtool (Prometheus 2.42).

Generates random expressions over a fixed set of series, has `promtool test rules` evaluate them
(every promql_expr_test expects nothing, so promtool prints what it got), turns promtool's answers
into a PromQL .test file and runs our conformance runner on it. Expressions promtool rejects at
parse time are checked for the same error text by `promql_conformance --parse-errors`.

Usage: promql_differential.py PROMTOOL RUNNER WORKDIR SEED[,SEED...] COUNT
"""
import json
import os
import random
import re
import subprocess
import sys

SERIES = [
    ('http_requests{job="api", instance="0", group="a"}', '0+10x5 3+7x10 100 stale 200+5x5'),
    ('http_requests{job="api", instance="1", group="b"}', '5+3x25'),
    ('http_requests{job="web", instance="0", group="a"}', '1 _ 4 _ 9 _ 16 _ 25 30 2+1x10'),
    ('gauge{job="api", instance="0"}', '-5+1.5x30'),
    ('gauge{job="web", instance="1"}', '10 8 9 NaN 7 _x3 12 -3 4 4 4 stale 1 2 3'),
    ('hist_bucket{job="api", le="0.1"}', '0+1x30'),
    ('hist_bucket{job="api", le="0.5"}', '0+3x30'),
    ('hist_bucket{job="api", le="1"}', '0+4x30'),
    ('hist_bucket{job="api", le="+Inf"}', '0+5x30'),
    ('hist_bucket{job="web", le="1"}', '0+2x30'),
    ('hist_bucket{job="web", le="+Inf"}', '0+2x30'),
    ('info{job="api", version="v1"}', '1x30'),
    ('info{job="web", version="v2"}', '1x30'),
    ('latency{job="api"}', '0.1+0.37x12 4.7-0.13x17'),
    ('latency{job="web"}', '1e6+0.3x30'),
]
SELECTORS = ['http_requests', 'gauge', 'http_requests{instance="0"}', 'gauge{job=~"a.*"}',
             'http_requests{group!="a"}', '{__name__=~"gauge|info"}', 'info', 'latency']
RANGES = ['1m', '2m', '3m', '5m', '7m', '10m']
RANGE_FUNCS = ['rate', 'increase', 'delta', 'irate', 'idelta', 'deriv', 'changes', 'resets',
               'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'count_over_time',
               'stddev_over_time', 'stdvar_over_time', 'last_over_time', 'present_over_time',
               'absent_over_time']
VECTOR_FUNCS = ['abs', 'ceil', 'floor', 'exp', 'ln', 'log2', 'log10', 'sqrt', 'sgn', 'timestamp',
                'sort', 'sort_desc', 'absent']
# topk/bottomk are left out: Prometheus breaks ties between equal values arbitrarily.
AGGREGATIONS = ['sum', 'min', 'max', 'avg', 'count', 'group', 'stddev', 'stdvar', 'quantile',
                'count_values']
OPERATORS = ['+', '-', '*', '/', '%', '^', '==', '!=', '>', '<', '>=', '<=', 'and', 'or', 'unless',
             'atan2']
TIMES = ['0s', '1m', '4m', '7m30s', '10m', '13m', '20m', '27m', '45m']


def vector(rnd, depth=0):
    r = rnd.random()
    if depth > 2 or r < 0.25:
        s = rnd.choice(SELECTORS)
        if rnd.random() < 0.15:
            s += ' offset ' + rnd.choice(['1m', '3m', '-2m'])
        if rnd.random() < 0.1:
            s += ' @ ' + rnd.choice(['60', '300', '420.5'])
        return s
    if r < 0.45:
        inner = rnd.choice(SELECTORS) + '[' + rnd.choice(RANGES) + ']'
        if rnd.random() < 0.2:
            inner = '%s[%s:%s]' % (vector(rnd, depth + 1), rnd.choice(RANGES), rnd.choice(['', '30s', '1m', '2m']))
        return rnd.choice(RANGE_FUNCS) + '(' + inner + ')'
    if r < 0.55:
        return rnd.choice(VECTOR_FUNCS) + '(' + vector(rnd, depth + 1) + ')'
    if r < 0.7:
        agg = rnd.choice(AGGREGATIONS)
        grouping = rnd.choice(['', ' by (job)', ' without (instance)', ' by (group, job)', ' by ()'])
        param = {'quantile': rnd.choice(['0', '0.3', '0.9', '1']) + ', ', 'count_values': '"v", '}.get(agg, '')
        return '%s%s (%s%s)' % (agg, grouping, param, vector(rnd, depth + 1))
    if r < 0.9:
        op = rnd.choice(OPERATORS)
        modifier = ''
        if op in ('==', '!=', '>', '<', '>=', '<=') and rnd.random() < 0.5:
            modifier = ' bool'
        if rnd.random() < 0.4:
            modifier += rnd.choice([' on(job)', ' ignoring(instance)', ' on(job, instance)', ' ignoring(group, instance)'])
        rhs = vector(rnd, depth + 1) if rnd.random() < 0.7 else rnd.choice(['2', '0.5', '-1', 'scalar(gauge{instance="0"})'])
        return '(%s %s%s %s)' % (vector(rnd, depth + 1), op, modifier, rhs)
    return rnd.choice([
        'histogram_quantile(%s, %s)' % (rnd.choice(['0.5', '0.9', '0.99', '0', '1', '2']),
                                        rnd.choice(['hist_bucket', 'rate(hist_bucket[5m])', 'sum by (le) (hist_bucket)',
                                                    'sum by (le, job) (rate(hist_bucket[3m]))'])),
        'label_replace(%s, "dst", "$1-x", "job", "(a|w)(.*)")' % rnd.choice(SELECTORS),
        'label_join(%s, "dst", "-", "job", "instance")' % rnd.choice(SELECTORS),
        'predict_linear(%s[%s], 600)' % (rnd.choice(SELECTORS), rnd.choice(RANGES)),
        'holt_winters(%s[%s], 0.3, 0.6)' % (rnd.choice(SELECTORS), rnd.choice(RANGES)),
        'quantile_over_time(0.7, %s[%s])' % (rnd.choice(SELECTORS), rnd.choice(RANGES)),
        'clamp(%s, 0, 50)' % rnd.choice(SELECTORS),
        'clamp_min(%s, 10)' % rnd.choice(SELECTORS),
        'clamp_max(%s, 10)' % rnd.choice(SELECTORS),
        'round(%s, 3)' % rnd.choice(SELECTORS),
        'vector(time())',
        '(http_requests * on(job) group_left(version) info)',
        '(info * on(job) group_right(version) http_requests)',
        '(http_requests / ignoring(instance, group) group_left sum by (job) (http_requests))',
    ])


def main():
    promtool, runner, workdir, seeds, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    os.makedirs(workdir, exist_ok=True)
    cases = []
    for seed in seeds.split(','):
        rnd = random.Random(int(seed))
        for _ in range(count):
            e = vector(rnd)
            if e.startswith('(') and e.endswith(')') and rnd.random() < 0.5:
                e = e[1:-1]
            cases.append((e, rnd.choice(TIMES)))
    rule_test = os.path.join(workdir, 'differential_test.yml')
    with open(rule_test, 'w') as f:
        json.dump({'evaluation_interval': '1m', 'tests': [{
            'interval': '1m',
            'input_series': [{'series': s, 'values': v} for s, v in SERIES],
            'promql_expr_test': [{'expr': e, 'eval_time': t, 'exp_samples': []} for e, t in cases]}]}, f)
    out = subprocess.run([promtool, 'test', 'rules', rule_test], capture_output=True, text=True)
    text = out.stdout + out.stderr
    results = {}
    for block in re.split(r'\n    expr: ', text)[1:]:
        m = re.match(r'"((?:[^"\\]|\\.)*)", time: (\S+),(.*)', block, re.S)
        if not m:
            continue
        key = (json.loads('"' + m.group(1) + '"'), m.group(2))
        rest = m.group(3).strip()
        if rest.startswith('err:'):
            results[key] = ('err', rest[len('err:'):].strip().split('\n')[0])
        else:
            got = re.search(r'got: (.*)', rest)
            results[key] = ('ok', got.group(1).strip() if got else 'nil')
    lines = ['load 1m'] + ['  %s %s' % sv for sv in SERIES] + ['']
    parse_errors = []
    for e, t in cases:
        kind, got = results.get((e, t), ('ok', 'nil'))
        if kind == 'err':
            if 'parse error' in got:
                parse_errors.append((e, got))
            else:
                lines += ['eval_fail instant at %s %s' % (t, e), '']
            continue
        lines.append('eval instant at %s %s' % (t, e))
        if got not in ('nil', '[]', ''):
            for metric, value in re.findall(r'(\{[^}]*\}) (\S+?)(?:,|$)', got):
                lines.append('  %s %s' % (metric, value))
        lines.append('')
    test_file = os.path.join(workdir, 'differential.test')
    with open(test_file, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    errors_file = os.path.join(workdir, 'parse-errors.txt')
    with open(errors_file, 'w') as f:
        for e, msg in parse_errors:
            f.write(e + '\n' + msg + '\n')
    empty = os.path.join(workdir, 'no-expected-failures.txt')
    open(empty, 'w').close()
    print('%d expressions, %d rejected by the parser' % (len(cases), len(parse_errors)), flush=True)
    rc = subprocess.run([runner, '--instant-only', empty, test_file]).returncode
    rc2 = subprocess.run([runner, '--parse-errors', errors_file]).returncode
    return 1 if rc or rc2 else 0


if __name__ == '__main__':
    sys.exit(main())
