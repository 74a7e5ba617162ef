--[[
numbers.lua -- every number in the manuscript comes from the results registry.

Runs under plain pandoc (>= 3.1) and under Quarto (listed with `at: pre-ast`).

  [primary.estimate]{.num}   -> the registry entry's `text`, linked to its provenance
  ::: {#tbl-x .include file="../results/tables/table1.md"}
  Caption paragraph.
  :::                          -> the file's blocks spliced before the caption (Div id kept)
  ![..](fig.svg)               -> fig.png when writing DOCX
  [sets.crossover.count]{.num .word noun="trial"}
                               -> "one trial" / "two trials": a count in words, with its noun
  [primary.studies]{.cite}     -> the citations of the trials a registry key lists
  [sets.neuropathic]{.trials by="condition"}
                               -> "phantom limb pain [1] and spinal cord injury [2]": the trials
                                  grouped by an attribute of trial.<id>, each group cited
  [pain was lower]{.claim if="primary.p < protocol.alpha"}
                               -> the words as written; the build checks the condition first
                                  (metabuild.claims, rule check_claims) and stops if it is false

Registry (results/numbers.json; path from metadata `numbers-file`, default
../results/numbers.json, relative to the document's directory). Accepted shapes:
  {"schema": "metabuild-numbers/2", "activities": {id: provenance}, "numbers": {key: entry}}
      (the build's normal form, defined by workflow/lib/metabuild/registry.py: an entry's
      provenance fields are those of the activity its "activity" names)
  {"numbers": {key: entry, ...}, ...}   or   {key: entry, ...}
entry: {"text": "-1.83", "value": -1.83, "published": "-1.83" | {"text": ...} | null,
        "rule": "...", "script": "...", "inputs": [{"path":..., "sha256":...}] | {path: sha},
        or the same provenance fields nested under "provenance"}.
A key missing from the registry, a number naming an activity the registry does not hold, and
the old layout metabuild-numbers/1 are hard errors.

Metadata `numbers-subset` (set by metabuild.render, never by hand): a file holding the part of
that registry the document can cite (its numbers, their activities with the fields its
"activity_fields" lists), read first because decoding the whole registry of a large review costs
more than the rest of the filter; a key or field it lacks sends the filter to the whole registry.
The field is removed from the document's metadata (pandoc would record its temporary path in the
DOCX's properties).
]]

local stringify = pandoc.utils.stringify

local registry = nil          -- key -> entry
local activities = {}         -- activity id -> provenance (registry.py's normal form)
local registry_path = nil
local comment_id = 0

local function fmt()
  local f = FORMAT or ""
  if f:match("html") or f:match("revealjs") or f:match("epub") then return "html" end
  if f:match("docx") then return "docx" end
  if f:match("typst") then return "typst" end
  if f:match("latex") or f:match("beamer") then return "latex" end
  return f
end

-- Quarto replaces the global `error` with a logger that only prints (its filters/common/log.lua), so
-- an error here would not stop a Quarto render; `assert` raises a real Lua error under both engines.
local function error(message)
  assert(false, message)
end

-- The folder of the document being rendered. Quarto hands pandoc a temporary copy of the document
-- in a quarto-session folder, so PANDOC_STATE.input_files names that copy; quarto.doc.input_file
-- is the real one.
local function docdir()
  if quarto and quarto.doc and quarto.doc.input_file and quarto.doc.input_file ~= "" then
    return pandoc.path.directory(quarto.doc.input_file)
  end
  local files = PANDOC_STATE and PANDOC_STATE.input_files or {}
  if #files > 0 and files[1] ~= "-" then
    return pandoc.path.directory(files[1])
  end
  return "."
end

local function resolve(path)
  if pandoc.path.is_absolute(path) then return path end
  return pandoc.path.normalize(pandoc.path.join({ docdir(), path }))
end

local function read_file(path)
  local fh, err = io.open(path, "rb")
  if not fh then return nil, err end
  local s = fh:read("a")
  fh:close()
  return s
end

-- "audit" (default): every number carries its provenance (HTML tooltip, DOCX comment) and links
-- (HTML, PDF) to its entry in the provenance document (metadata provenance-href, e.g.
-- "provenance.html"). "submission" (metadata metabuild-variant): the document a journal receives:
-- plain numbers, no comments, no links, no marks on claims.
local variant = "audit"
local provenance_href = nil

-- key -> entry and activity id -> provenance, from the registry file at `path`
local function decode_registry(path)
  local text, err = read_file(path)
  if not text then
    error("numbers.lua: cannot read the number registry " .. path .. " (" .. tostring(err) .. ")")
  end
  local ok, data = pcall(pandoc.json.decode, text, false)
  if not ok or type(data) ~= "table" then
    error("numbers.lua: " .. path .. " is not valid JSON: " .. tostring(data))
  end
  if data.schema == "metabuild-numbers/1" then
    error("numbers.lua: " .. path .. " is in the old registry layout (metabuild-numbers/1); " ..
      "rebuild it: snakemake --cores 2 results/numbers.json")
  end
  local acts = type(data.activities) == "table" and data.activities or {}
  local fields = nil
  if type(data.activity_fields) == "table" then
    fields = {}
    for _, name in ipairs(data.activity_fields) do fields[name] = true end
  end
  if type(data.numbers) == "table" then data = data.numbers end
  return data, acts, fields
end

-- true while `registry` holds only the subset render.py wrote (numbers-subset), whose activities
-- hold the fields in `subset_fields` only
local partial = false
local subset_fields = {}

local function load_registry(meta)
  if meta["metabuild-variant"] then
    variant = stringify(meta["metabuild-variant"])
    if variant ~= "audit" and variant ~= "submission" then
      error("numbers.lua: metabuild-variant must be 'audit' or 'submission', not '" .. variant .. "'")
    end
  end
  if meta["provenance-href"] and stringify(meta["provenance-href"]) ~= "" then
    provenance_href = stringify(meta["provenance-href"])
  end
  local rel = meta["numbers-file"] and stringify(meta["numbers-file"]) or "../results/numbers.json"
  if rel == "" then rel = "../results/numbers.json" end
  registry_path = resolve(rel)
  local subset = meta["numbers-subset"] and stringify(meta["numbers-subset"]) or ""
  if subset ~= "" then
    local fields
    registry, activities, fields = decode_registry(resolve(subset))
    subset_fields = fields or {}
    partial = true
    meta["numbers-subset"] = nil
    return meta
  end
  registry, activities = decode_registry(registry_path)
  return nil
end

-- the whole registry, in place of the subset (a key or activity field the subset lacks)
local function load_whole_registry()
  registry, activities = decode_registry(registry_path)
  partial = false
end

-- provenance helpers ---------------------------------------------------------
local function field(entry, name)
  if entry[name] ~= nil then return entry[name] end
  if type(entry.provenance) == "table" then return entry.provenance[name] end
  if entry.activity ~= nil then
    local activity = activities[entry.activity]
    if partial and (type(activity) ~= "table" or not subset_fields[name]) then
      load_whole_registry()
      activity = activities[entry.activity]
    end
    if type(activity) ~= "table" then
      error("numbers.lua: " .. tostring(registry_path) .. ": a number refers to activity '" ..
        tostring(entry.activity) .. "', which the registry does not hold (corrupt registry; rebuild it)")
    end
    return activity[name]
  end
  return nil
end

local function is_null(v) return v == nil or v == pandoc.json.null end

-- a printable form of a registry field: strings/numbers as they are; objects by their
-- printed/text/path/value member; lists (e.g. several printed occurrences) joined with " | "
local function as_text(v)
  if is_null(v) then return nil end
  if type(v) == "table" then
    if #v > 0 then
      local parts = {}
      for _, x in ipairs(v) do
        local t = as_text(x)
        if t then parts[#parts + 1] = t end
      end
      return #parts > 0 and table.concat(parts, " | ") or nil
    end
    local t = nil
    for _, name in ipairs({ "printed", "text", "path", "value" }) do
      if not is_null(v[name]) then t = tostring(v[name]); break end
    end
    if t and v.matches ~= nil and not is_null(v.matches) then
      t = t .. (v.matches and " (reproduced)" or " (differs)")
    end
    return t
  end
  return tostring(v)
end

local function inputs_list(entry)
  local inp = field(entry, "inputs")
  local out = {}
  if type(inp) ~= "table" then return out end
  if #inp > 0 then
    for _, x in ipairs(inp) do
      if type(x) == "table" then
        out[#out + 1] = { path = tostring(x.path or x.file or "?"), sha = tostring(x.sha256 or x.sha or "") }
      else
        out[#out + 1] = { path = tostring(x), sha = "" }
      end
    end
  else
    local keys = {}
    for k in pairs(inp) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = inp[k]
      local sha = type(v) == "table" and (v.sha256 or v.sha or "") or tostring(v)
      out[#out + 1] = { path = k, sha = tostring(sha) }
    end
  end
  return out
end

local function short(sha)
  sha = sha or ""
  sha = sha:gsub("^sha256:", "")
  return sha:sub(1, 12)
end

local function summary(key, entry)
  local parts = { key .. ": " .. tostring(entry.text) }
  local pub = as_text(entry.published)
  parts[#parts + 1] = "published: " .. (pub or "not printed in the paper")
  local rule = as_text(field(entry, "rule"))
  if rule then parts[#parts + 1] = "rule: " .. rule end
  local script = as_text(field(entry, "script"))
  if script then parts[#parts + 1] = "script: " .. script end
  local ins = {}
  for _, i in ipairs(inputs_list(entry)) do
    ins[#ins + 1] = i.path .. (i.sha ~= "" and ("@" .. short(i.sha)) or "")
  end
  if #ins > 0 then parts[#parts + 1] = "inputs: " .. table.concat(ins, ", ") end
  return table.concat(parts, "; ")
end

local function lookup(key)
  local entry = registry[key]
  if (type(entry) ~= "table" or entry.text == nil) and partial then
    load_whole_registry()
    entry = registry[key]
  end
  if type(entry) ~= "table" or entry.text == nil then
    error("numbers.lua: registry key '" .. key .. "' is not in results/numbers.json (" ..
      tostring(registry_path) .. "); add it to the registry or fix the span [" .. key .. "]{.num}")
  end
  return entry
end

local function epoch_date()
  local e = tonumber(os.getenv("SOURCE_DATE_EPOCH") or "") or 0
  return os.date("!%Y-%m-%dT%H:%M:%SZ", e)
end

-- counts in words ("two trials") ---------------------------------------------------
local WORDS = { [0] = "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
  "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
  "nineteen", "twenty" }

local function span_key(span)
  return (stringify(span.content):gsub("^%s+", ""):gsub("%s+$", ""))
end

-- the text a .num span prints: the registry's text, or (.word) the count in words, followed
-- by noun="trial" in the singular or plural (plural="..." where adding "s" is wrong)
local function display_text(span, key, entry)
  local text = tostring(entry.text)
  local n = tonumber(entry.value)
  local noun = span.attributes["noun"]
  if span.classes:includes("word") or noun then
    if n == nil or n ~= math.floor(n) or n < 0 then
      error("numbers.lua: [" .. key .. "]{.num .word} needs a whole count, but the registry holds " .. text)
    end
  end
  if span.classes:includes("word") and WORDS[n] then
    text = (noun and n == 0) and "no" or WORDS[n]
  end
  if noun then
    text = text .. " " .. (n == 1 and noun or (span.attributes["plural"] or (noun .. "s")))
  end
  return text
end

-- .num spans --------------------------------------------------------------------
local function num_span(span)
  if not span.classes:includes("num") then return nil end
  local key = span_key(span)
  local entry = lookup(key)
  local text = display_text(span, key, entry)
  local value = pandoc.Str(text)
  local f = fmt()
  if variant == "submission" then
    return value
  elseif f == "html" then
    local inner = provenance_href and pandoc.Link({ value }, provenance_href .. "#prov-" .. key) or value
    return pandoc.Span({ inner },
      pandoc.Attr("", { "num" }, { { "data-key", key }, { "title", summary(key, entry) } }))
  elseif f == "docx" then
    comment_id = comment_id + 1
    local id = tostring(comment_id)
    local attrs = { { "id", id }, { "author", "metabuild" }, { "date", epoch_date() } }
    return {
      pandoc.Span({ pandoc.Str(summary(key, entry)) }, pandoc.Attr("", { "comment-start" }, attrs)),
      value,
      pandoc.Span({}, pandoc.Attr("", { "comment-end" }, { { "id", id } })),
    }
  elseif f == "typst" then
    -- a Typst string literal, so texts such as "= .029" or "- 1" are never read as markup
    local lit = text:gsub("\\", "\\\\"):gsub('"', '\\"')
    if not provenance_href then return value end
    local url = (provenance_href .. "#prov-" .. key):gsub("\\", "\\\\"):gsub('"', '\\"')
    -- the trailing ';' ends the expression, so a following "(" or "[" is not read as arguments
    return pandoc.RawInline("typst", '#link("' .. url .. '", "' .. lit .. '");')
  else
    return value
  end
end

-- lists of trials: .cite and .trials spans ---------------------------------------------
local function trial_ids(key, entry, how)
  if type(entry.value) ~= "table" then
    error("numbers.lua: [" .. key .. "]{" .. how .. "} needs a registry key that lists trials, but " ..
      key .. " holds " .. tostring(entry.text))
  end
  if #entry.value == 0 then
    error("numbers.lua: [" .. key .. "]{" .. how .. "}: the registry lists no trial under " .. key ..
      "; a sentence citing these trials no longer fits the data")
  end
  return entry.value
end

local function trial(id)
  local entry = lookup("trial." .. tostring(id))
  return type(entry.attributes) == "table" and entry.attributes or {}
end

-- one citation of several trials, as if the author had written [@a; @b]
local function citation(ids)
  local citations, keys = {}, {}
  for _, id in ipairs(ids) do
    local cite_key = tostring(trial(id).citation_key or id)
    citations[#citations + 1] = pandoc.Citation(cite_key, "NormalCitation")
    keys[#keys + 1] = "@" .. cite_key
  end
  return pandoc.Cite({ pandoc.Str("[" .. table.concat(keys, "; ") .. "]") }, citations)
end

local function cite_span(span)
  local key = span_key(span)
  return citation(trial_ids(key, lookup(key), ".cite"))
end

-- "a [1], b [2, 3] and c [4]": the trials grouped by one attribute (condition, label, ...),
-- each group followed by its citation; the attribute's text is data, so it stays plain text
local function trials_span(span)
  local key = span_key(span)
  local by = span.attributes["by"] or "label"
  local groups, order = {}, {}
  for _, id in ipairs(trial_ids(key, lookup(key), ".trials")) do
    local name = trial(id)[by]
    if is_null(name) then
      error("numbers.lua: [" .. key .. "]{.trials by=\"" .. by .. "\"}: trial " .. tostring(id) ..
        " has no attribute '" .. by .. "' in the registry")
    end
    name = tostring(name)
    if not groups[name] then
      groups[name] = {}
      order[#order + 1] = name
    end
    table.insert(groups[name], id)
  end
  local out = pandoc.Inlines({})
  for i, name in ipairs(order) do
    if i > 1 then
      out:extend(pandoc.Inlines(i == #order and " and " or ", "))
    end
    out:extend(pandoc.Inlines(name))
    out:insert(pandoc.Space())
    out:insert(citation(groups[name]))
  end
  return out
end

-- claims: checked before rendering (metabuild.claims); here the words are kept as written. In
-- HTML the span stays, so a reader can see which sentence rests on which condition.
local function claim_span(span)
  if fmt() == "html" and variant == "audit" then
    return pandoc.Span(span.content, pandoc.Attr("", { "claim" }, { { "data-claim", span.attributes["if"] or "" } }))
  end
  return span.content
end

-- cross-document references: [fig-forest-dose]{.xref document="supplement"} prints the label
-- the other document gives that figure or table ("Supplemental Figure 1"), counted as that
-- document numbers them (top-level #fig- and #tbl- figures, in order; its crossref prefixes)
local xref_labels = {}

local function labels_of(document)
  if xref_labels[document] then return xref_labels[document] end
  local path = resolve(document .. ".qmd")
  local text, err = read_file(path)
  if not text then
    error("numbers.lua: a cross-reference names the document '" .. document .. "', but " .. path ..
      " cannot be read (" .. tostring(err) .. ")")
  end
  local doc = pandoc.read(text, "markdown")
  local prefix = { fig = "Figure", tbl = "Table" }
  local c = doc.meta.crossref
  if type(c) == "table" then
    if c["fig-prefix"] then prefix.fig = stringify(c["fig-prefix"]) end
    if c["tbl-prefix"] then prefix.tbl = stringify(c["tbl-prefix"]) end
  end
  local labels, count = {}, { fig = 0, tbl = 0 }
  local function visit(blocks)
    for _, b in ipairs(blocks) do
      local id = (b.t == "Figure" or b.t == "Div") and b.identifier or ""
      local kind = id:match("^(%a+)%-")
      if kind == "fig" or kind == "tbl" then
        count[kind] = count[kind] + 1          -- a figure's panels are not counted
        labels[id] = prefix[kind] .. " " .. count[kind]
      elseif b.t == "Div" then
        visit(b.content)
      end
    end
  end
  visit(doc.blocks)
  xref_labels[document] = labels
  return labels
end

local function xref_span(span)
  local id = span_key(span)
  local document = span.attributes["document"]
  if not document or document == "" then
    error("numbers.lua: [" .. id .. "]{.xref} needs document=\"...\" (the .qmd it refers to)")
  end
  local label = labels_of(document)[id]
  if not label then
    local known = {}
    for k in pairs(labels_of(document)) do known[#known + 1] = k end
    table.sort(known)
    error("numbers.lua: [" .. id .. "]{.xref document=\"" .. document .. "\"}: " .. document ..
      ".qmd has no figure or table #" .. id .. " (it has: " .. table.concat(known, ", ") .. ")")
  end
  return pandoc.Str(label)
end

local function span_filter(span)
  if span.classes:includes("num") then return num_span(span) end
  if span.classes:includes("xref") then return xref_span(span) end
  if span.classes:includes("cite") then return cite_span(span) end
  if span.classes:includes("trials") then return trials_span(span) end
  if span.classes:includes("claim") then return claim_span(span) end
  return nil
end

-- .include Divs -----------------------------------------------------------------
local function reader_for(path)
  local ext = (path:match("%.([%w]+)$") or ""):lower()
  if ext == "html" or ext == "htm" then return "html" end
  if ext == "tex" then return "latex" end
  if ext == "csv" then return "csv" end
  return "markdown"
end

local function include_div(div)
  if not div.classes:includes("include") then return nil end
  local file = div.attributes["file"]
  if not file or file == "" then
    error("numbers.lua: .include Div '" .. div.identifier .. "' has no file= attribute")
  end
  local path = resolve(file)
  local text, err = read_file(path)
  if not text then
    error("numbers.lua: cannot read included file " .. path .. " (" .. tostring(err) .. ")")
  end
  local doc = pandoc.read(text, reader_for(path))
  local blocks = pandoc.Blocks({})
  blocks:extend(doc.blocks)
  blocks:extend(div.content)         -- the caption paragraph stays last (Quarto's convention)
  local classes = pandoc.List({})
  for _, c in ipairs(div.classes) do if c ~= "include" then classes:insert(c) end end
  local attrs = {}
  for k, v in pairs(div.attributes) do if k ~= "file" then attrs[k] = v end end
  return pandoc.Div(blocks, pandoc.Attr(div.identifier, classes, attrs))
end

-- images --------------------------------------------------------------------------
local function image(img)
  if fmt() ~= "docx" then return nil end
  if img.src:match("%.svg$") then
    img.src = img.src:gsub("%.svg$", ".png")
  end
  -- Word takes a figure's alt text from its caption: keep the caption's words, not the provenance
  -- comments of the numbers in it
  img.caption = img.caption:walk({
    Span = function(s)
      if s.classes:includes("comment-start") then return {} end
    end,
  })
  return img
end

return {
  { Meta = load_registry },
  { Div = include_div },
  { Span = span_filter, Image = image },
}
