"""Watch a fill as a page: ``steerdiff replay trace.jsonl -o fill.html``, and the server's live ``/ui``.

The page is one self-contained HTML file (no network, no external script): the canvas step by step,
each position's decoded token, the positions committed at that step highlighted, their confidences,
a slider and a play button. On load the script also writes every step's canvas into ``#steps`` (one
``<li data-step>`` per step) and the final text into ``#final``; ``?step=K`` opens step K.

Traces: the JSON lines of ``steerdiff generate --trace`` (``{"step", "row", "positions", "tokens",
"remasked", ...}``), whose tokens are decoded here with the model's tokenizer, or the richer lines of
:func:`record`, which add ``pieces`` (decoded tokens), ``confidence`` (per committed position) and a
``step: -1`` record of the positions fixed before the loop (a template's fixed text; a ``generate
--trace`` file does not have them, so its page shows them as masks).
"""

from __future__ import annotations

import html
import json
from typing import Any

from .errors import ConfigError
from .hookspecs import hookimpl


def load_trace(path: str, row: int = 0) -> list[dict[str, Any]]:
    """The step records of ``row`` in a trace file, in step order; a bad line is a ConfigError naming it."""
    steps = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as exc:
        raise ConfigError(f"trace file {path!r}: {exc.strerror}") from None
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            if rec.get("row", 0) == row:
                steps.append({"step": int(rec["step"]), "positions": list(rec["positions"]), "tokens": list(rec["tokens"]),
                              "remasked": list(rec.get("remasked") or []), "pieces": rec.get("pieces"),
                              "confidence": rec.get("confidence"), "length": rec.get("length")})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"trace file {path!r} line {i}: not a steerdiff trace record ({exc})") from None
    if not steps:
        raise ConfigError(f"trace file {path!r} has no steps for row {row}")
    return sorted(steps, key=lambda s: s["step"])


def page_data(steps: list[dict[str, Any]], tokenizer=None, title: str = "steerdiff fill") -> dict[str, Any]:
    """The page's embedded data: ``{"title", "length", "steps": [{"step", "positions", "pieces", "confidence",
    "remasked"}]}``; missing pieces are decoded with ``tokenizer`` (a ConfigError if none is given)."""
    vocab = None
    out = []
    length = 0
    for s in steps:
        pieces = s.get("pieces")
        if pieces is None:
            if tokenizer is None:
                raise ConfigError("the trace has token ids only: give the model whose tokenizer decodes them")
            if vocab is None:
                from .vocab import vocab_for

                vocab = vocab_for(tokenizer)
            pieces = [vocab.decode([t]) for t in s["tokens"]]
        length = max([length, s.get("length") or 0] + [p + 1 for p in s["positions"]] + [p + 1 for p in s["remasked"]])
        out.append({"step": s["step"], "positions": s["positions"], "pieces": pieces, "confidence": s.get("confidence"),
                    "remasked": s["remasked"]})
    return {"title": title, "length": length, "steps": out}


def final_text(data: dict[str, Any]) -> str:
    """The canvas text after the last step (what the page shows in ``#final``)."""
    return canvas_after(data, len(data["steps"]) - 1)


def canvas_after(data: dict[str, Any], k: int) -> str:
    """The canvas after step index ``k``, masked positions as ``_`` (the page's ``#steps`` text)."""
    cells: list[str | None] = [None] * data["length"]
    for s in data["steps"][: k + 1]:
        for p in s["remasked"]:
            cells[p] = None
        for p, piece in zip(s["positions"], s["pieces"]):
            cells[p] = piece
    return "".join("_" if c is None else c for c in cells)


class _Recorder:
    """A plugin for :func:`record`: stashes each step's confidences and the committed positions."""

    def __init__(self):
        self.conf = None
        self.rows: list[list[dict]] = []

    @hookimpl
    def check_commit(self, confidence):
        self.conf = confidence.detach().float().cpu().clone()  # (B, L)

    @hookimpl
    def on_step_end(self, run, step, canvas, committed):
        from .vocab import vocab_for

        vocab = vocab_for(run.tokenizer)
        if not self.rows:
            self.rows = [[] for _ in range(canvas.shape[0])]
            if run.frozen is not None and bool(run.frozen.any()):  # positions fixed before the loop (templates)
                for b in range(canvas.shape[0]):
                    pos = run.frozen[b].nonzero().flatten().tolist()
                    toks = canvas[b, pos].tolist()
                    self.rows[b].append({"step": -1, "row": b, "positions": pos, "tokens": toks, "remasked": [],
                                         "pieces": [vocab.decode([t]) for t in toks], "confidence": None,
                                         "length": run.length})
        for b in range(canvas.shape[0]):
            pos = committed[b].nonzero().flatten().tolist()
            toks = canvas[b, pos].tolist()
            conf = [round(float(self.conf[b, p]), 4) if self.conf is not None else None for p in pos]
            self.rows[b].append({"step": step, "row": b, "positions": pos, "tokens": toks, "remasked": [],
                                 "pieces": [vocab.decode([t]) for t in toks], "confidence": conf, "length": run.length})


def record(model, prompt: str, path: str | None = None, **generate_kwargs):
    """``sd.generate(model, prompt, ...)`` that also writes a replay trace with confidences to ``path``
    (one JSON line per step). Returns the Result. Not thread-safe: the recorder is a process-wide plugin."""
    from .loop import generate
    from .plugins import register_plugin, unregister_plugin

    rec = _Recorder()
    name = register_plugin(rec, name=f"steerdiff-replay-recorder-{id(rec)}")
    try:
        out = generate(model, prompt, **generate_kwargs)
    finally:
        unregister_plugin(name)
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            for row in rec.rows:
                f.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in row)
    return out


_CSS = """body{font:14px system-ui,sans-serif;margin:1.5em;max-width:70em}#canvas{font:15px monospace;line-height:2.2em}
.cell{display:inline-block;min-width:.7em;padding:0 1px;margin:1px;border-bottom:3px solid #ccc;white-space:pre}
.cell.mask{color:#bbb}.cell.new{background:#c8f7c5}.cell.remask{background:#f7d0c5}
#steps{font:12px monospace;color:#555;max-height:16em;overflow:auto}#final{font:15px monospace;white-space:pre-wrap;
background:#f4f4f4;padding:.5em}label{margin-right:1em}"""

_JS = r"""
function canvasAfter(data, k){const cells=new Array(data.length).fill(null),conf=new Array(data.length).fill(null);
  for(let i=0;i<=k&&i<data.steps.length;i++){const s=data.steps[i];
    for(const p of s.remasked){cells[p]=null;conf[p]=null;}
    s.positions.forEach((p,j)=>{cells[p]=s.pieces[j];conf[p]=s.confidence?s.confidence[j]:null;});}
  return {cells,conf};}
function textOf(cells){return cells.map(c=>c===null?'_':c).join('');}
function draw(data,k){const box=document.getElementById('canvas');box.innerHTML='';
  if(k<0){for(let i=0;i<data.length;i++){const e=document.createElement('span');e.className='cell mask';e.textContent='\u2591';box.appendChild(e);}
    document.getElementById('info').textContent='before step 0: '+data.length+' masked positions';return;}
  const {cells,conf}=canvasAfter(data,k),s=data.steps[k],now=new Set(s.positions),rem=new Set(s.remasked);
  cells.forEach((c,i)=>{const e=document.createElement('span');
    e.className='cell'+(c===null?' mask':'')+(now.has(i)?' new':'')+(rem.has(i)?' remask':'');
    e.textContent=c===null?'\u2591':(c===''?'\u00b7':c);
    const cf=conf[i];if(cf!==null){e.title='position '+i+', confidence '+cf;e.style.borderBottomColor='hsl('+Math.round(120*Math.min(1,Math.max(0,cf)))+',70%,45%)';}
    else e.title='position '+i;box.appendChild(e);});
  const cs=s.confidence?s.positions.map((p,j)=>p+':'+(s.confidence[j]===null?'?':s.confidence[j].toFixed(2))).join(' '):'(no confidences in this trace)';
  document.getElementById('info').textContent='step '+s.step+': committed '+s.positions.length+' position(s) ['+s.positions.join(', ')+'] confidence '+cs;}
function setup(data){const sl=document.getElementById('slider'),n=data.steps.length;sl.max=n-1;sl.min=-1;
  const ol=document.getElementById('steps');ol.innerHTML='';
  data.steps.forEach((s,i)=>{const li=document.createElement('li');li.dataset.step=s.step;li.textContent=textOf(canvasAfter(data,i).cells);ol.appendChild(li);});
  document.getElementById('final').textContent=n?textOf(canvasAfter(data,n-1).cells):'';
  document.getElementById('count').textContent=n+' steps, '+data.length+' positions';
  sl.oninput=()=>draw(data,+sl.value);
  const q=new URLSearchParams(location.search).get('step');sl.value=q!==null?Math.min(n-1,Math.max(-1,+q)):n-1;draw(data,+sl.value);
  let timer=null;document.getElementById('play').onclick=()=>{if(timer){clearInterval(timer);timer=null;return;}
    if(+sl.value>=n-1)sl.value=-1;draw(data,+sl.value);
    timer=setInterval(()=>{if(+sl.value>=n-1){clearInterval(timer);timer=null;return;}sl.value=+sl.value+1;draw(data,+sl.value);},400);};}
"""

_BODY = """<h1>{title}</h1><p id="count"></p>
<div><button id="play">play / pause</button> <input id="slider" type="range" step="1" style="width:60%"></div>
<p id="info"></p><div id="canvas"></div><h3>Final canvas</h3><div id="final"></div>
<h3>Every step</h3><ol id="steps" start="0"></ol>"""


def render_page(data: dict[str, Any]) -> str:
    """One self-contained HTML page replaying ``data`` (see :func:`page_data`)."""
    blob = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")  # no '</script>' inside the script
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(data['title'])}</title>"
            f"<style>{_CSS}</style></head><body>{_BODY.format(title=html.escape(data['title']))}"
            f"<script>{_JS}\nsetup({blob});</script></body></html>")


def live_page(model_name: str) -> str:
    """The server's ``/ui``: a prompt and a constraint are sent with ``stream`` and ``canvas_snapshots``, and
    the canvas is drawn step by step as the snapshots arrive (same renderer as the replay page)."""
    form = f"""<h1>steerdiff serve: {html.escape(model_name)}</h1>
<p><label>prompt <input id="prompt" size="60" value="Maria Lopez, 34, maria@example.org, signs in as a user."></label></p>
<p><label>JSON Schema (empty: none) <br><textarea id="schema" rows="5" cols="80">{{"type":"object","properties":{{"name":{{"type":"string","maxLength":20}},"age":{{"type":"integer","minimum":0,"maximum":130}}}},"required":["name","age"]}}</textarea></label></p>
<p><label>API key <input id="key" type="password"></label> <button id="go">fill</button></p>"""
    script = _JS + r"""
document.getElementById('go').onclick=async()=>{const schema=document.getElementById('schema').value.trim();
  const body={model:%s,messages:[{role:'user',content:document.getElementById('prompt').value}],stream:true,canvas_snapshots:true};
  if(schema)body.response_format={type:'json_schema',json_schema:{name:'form',schema:JSON.parse(schema)}};
  const headers={'Content-Type':'application/json'};const key=document.getElementById('key').value;if(key)headers.Authorization='Bearer '+key;
  const resp=await fetch('/v1/chat/completions',{method:'POST',headers,body:JSON.stringify(body)});
  if(!resp.ok){document.getElementById('info').textContent=await resp.text();return;}
  const data={title:'live',length:0,steps:[]};const rd=resp.body.getReader(),dec=new TextDecoder();let buf='';
  for(;;){const {done,value}=await rd.read();if(done)break;buf+=dec.decode(value,{stream:true});let i;
    while((i=buf.indexOf('\n\n'))>=0){const ev=buf.slice(6,i);buf=buf.slice(i+2);if(ev==='[DONE]')continue;const m=JSON.parse(ev);
      if(m.error){document.getElementById('info').textContent=m.error.message;return;}
      const s=m.steerdiff;if(!s||s.index!==0)continue;data.length=s.canvas.length;
      data.steps.push({step:s.step,positions:s.committed,pieces:s.committed.map(p=>s.canvas[p]),confidence:null,remasked:[]});setup(data);}}};
""".replace("%s", json.dumps(model_name))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>steerdiff serve</title><style>{_CSS}</style></head>"
            f"<body>{form}{_BODY.format(title='canvas')}<script>{script}</script></body></html>")


def add_subcommand(sub) -> None:
    """Register ``steerdiff replay trace.jsonl -o fill.html``."""
    r = sub.add_parser("replay", help="write a self-contained HTML page that replays a trace step by step")
    r.add_argument("trace", help="a trace from 'steerdiff generate --trace' or steerdiff.replay.record")
    r.add_argument("-o", "--output", required=True, help="the HTML file to write")
    r.add_argument("--row", type=int, default=0, help="which row of a batch trace")
    r.add_argument("--model", default=None, help="the model whose tokenizer decodes the trace (default steerdiff-tiny)")
    r.set_defaults(func=cmd_replay)


def cmd_replay(args) -> int:
    steps = load_trace(args.trace, args.row)
    tokenizer = None
    if any(s["pieces"] is None for s in steps):
        from .validate import load_model

        tokenizer = load_model(args.model).tokenizer
    data = page_data(steps, tokenizer, title=f"steerdiff replay: {args.trace}")
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(render_page(data))
    print(f"{args.output}: {len(data['steps'])} steps, {data['length']} positions")
    return 0
