--[[
crossref.lua -- figure/table numbering for the plain-pandoc path (Quarto does its own; under
Quarto this filter only writes panel references as on the pandoc path, see below).

  ![Caption](x.svg){#fig-a}              -> "Figure 1. Caption"
  ::: {#fig-b}  (sub-figures #fig-b1 ...; last paragraph = caption) -> "Figure 2. ...", panels "A", "B"
  ::: {#tbl-c}  (a table; last paragraph = caption)  -> the Table's caption "Table 1. ..."
  @fig-a / [@fig-a; @tbl-c]              -> links "Figure 1" / "Figure 2A" / "Table 1"

Metadata `crossref: {fig-prefix: Figure, tbl-prefix: Table}` changes the words.
Must run BEFORE --citeproc, so the @fig-/@tbl- citations never reach citeproc.
]]
if quarto then
  -- Under Quarto (listed `at: post-render`) Quarto numbers figures and tables and resolves the
  -- references itself, writing a panel's as "Figure 4 (A)" (its crossref/refs.lua): make that
  -- "Figure 4A", as on the pandoc path. (In the PDF Typst writes the reference.)
  return { { Link = function(link)
    if not link.classes:includes("quarto-xref") then return nil end
    local head, letter = pandoc.utils.stringify(link.content):match("^(.-%d)%s*%((%a)%)$")
    if not head then return nil end
    link.content = { pandoc.Str(head .. letter) }
    return link
  end } }
end

local stringify = pandoc.utils.stringify

local prefix = { fig = "Figure", tbl = "Table" }
local labels = {}     -- id -> "Figure 1" / "Figure 4A" / "Table 2"
local count = { fig = 0, tbl = 0 }
local LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

local function fmt()
  local f = FORMAT or ""
  if f:match("html") then return "html" end
  if f:match("docx") then return "docx" end
  if f:match("typst") then return "typst" end
  return f
end

local function caption_prefix(text)
  return { pandoc.Strong({ pandoc.Str(text .. ".") }), pandoc.Space() }
end

local function caption_inlines(blocks)
  -- flatten a caption's blocks to inlines
  local out = pandoc.Inlines({})
  for i, b in ipairs(blocks) do
    if i > 1 then out:insert(pandoc.Space()) end
    if b.content then out:extend(b.content) end
  end
  return out
end

local function is_caption_para(b)
  return b and (b.t == "Para" or b.t == "Plain")
end

local function number_figure(fig, label)
  local body = caption_inlines(fig.caption.long)
  local inl = pandoc.Inlines(caption_prefix(label))
  inl:extend(body)
  fig.caption.long = { pandoc.Plain(inl) }
  return fig
end

-- pass 1: number everything in document order ----------------------------------
local function Meta(meta)
  local c = meta.crossref
  if c and type(c) == "table" then
    if c["fig-prefix"] then prefix.fig = stringify(c["fig-prefix"]) end
    if c["tbl-prefix"] then prefix.tbl = stringify(c["tbl-prefix"]) end
  end
end

local function subfigure_div(div)
  -- a Div #fig-x holding figures and a caption paragraph
  count.fig = count.fig + 1
  local label = prefix.fig .. " " .. count.fig
  labels[div.identifier] = label
  local panels = pandoc.List({})
  local caption = nil
  local n = 0
  for _, b in ipairs(div.content) do
    if b.t == "Figure" then
      n = n + 1
      local letter = LETTERS:sub(n, n)
      if b.identifier ~= "" then labels[b.identifier] = label .. letter end
      local inl = pandoc.Inlines({ pandoc.Strong({ pandoc.Str(letter) }), pandoc.Space() })
      inl:extend(caption_inlines(b.caption.long))
      b.caption.long = { pandoc.Plain(inl) }
      panels:insert(b)
    elseif is_caption_para(b) then
      caption = b
    else
      panels:insert(b)
    end
  end
  local cap = pandoc.Inlines(caption_prefix(label))
  if caption then cap:extend(caption.content) end
  -- panels per row (Quarto's layout-ncol; default 2): 1 stacks them at full width
  local ncol = math.max(1, math.floor(tonumber(div.attributes["layout-ncol"] or "2") or 2))
  local f = fmt()
  local out = pandoc.List({})
  if f == "docx" then
    -- Word has no figure grid (pandoc puts the panels in one table row, as thumbnails): the
    -- panels follow each other at full width, then the figure's caption
    for _, p in ipairs(panels) do
      pandoc.walk_block(p, { Image = function(i) i.attributes["width"] = "100%" end })
      out:insert(p)
    end
    out:insert(pandoc.Para(cap))
    return { pandoc.Div(out, pandoc.Attr(div.identifier, { "subfigures" }, {})) }, false
  end
  if f == "typst" then
    -- a grid of the panels, then one caption; the whole thing is a labelled figure
    -- a figure of several rows of panels may continue on the next page (between rows), rather
    -- than run off its page under its own caption
    -- (and, being taller than a page may be, it stays in the text's flow instead of floating)
    out:insert(pandoc.RawBlock("typst", "#[#show figure: set block(breakable: true)\n" ..
      "#show figure: set figure(placement: none)"))
    out:insert(pandoc.RawBlock("typst", "#figure(kind: image, supplement: none, gap: 0.8em, grid(columns: " ..
      ncol .. ", gutter: 1em,"))
    for _, p in ipairs(panels) do
      local img = nil
      pandoc.walk_block(p, { Image = function(i) img = i end })
      out:insert(pandoc.RawBlock("typst", "[#block(breakable: false)["))
      if img then
        out:insert(pandoc.RawBlock("typst", '#align(left)[#text(weight: "bold")[' ..
          stringify(p.caption.long[1].content[1]) .. ']]'))
        out:insert(pandoc.Plain({ pandoc.Image({}, img.src, "", pandoc.Attr("", {}, { { "width", "100%" } })) }))
        local rest = pandoc.Inlines({})
        for i, x in ipairs(p.caption.long[1].content) do if i > 2 then rest:insert(x) end end
        out:insert(pandoc.Plain(rest))
      else
        out:insert(p)
      end
      local pid = (p.identifier and p.identifier ~= "") and (" <" .. p.identifier .. ">") or ""
      out:insert(pandoc.RawBlock("typst", "]" .. pid .. "],"))
    end
    out:insert(pandoc.RawBlock("typst", "), caption: ["))
    out:insert(pandoc.Plain(cap))
    out:insert(pandoc.RawBlock("typst", "]) <" .. div.identifier .. ">"))
    out:insert(pandoc.RawBlock("typst", "]"))
    return out, false
  end
  -- html/docx: a Figure holding the panel figures
  local attr = pandoc.Attr(div.identifier, { "subfigures", "columns-" .. ncol }, {})
  return pandoc.Figure(panels, { pandoc.Plain(cap) }, attr), false
end

local function Div(div)
  local id = div.identifier or ""
  if id:match("^fig%-") then
    return subfigure_div(div)
  elseif id:match("^tbl%-") then
    count.tbl = count.tbl + 1
    local label = prefix.tbl .. " " .. count.tbl
    labels[id] = label
    local blocks = pandoc.List({})
    local caption = pandoc.Inlines({})
    local tbl_index = nil
    for _, b in ipairs(div.content) do
      if b.t == "Table" and not tbl_index then
        blocks:insert(b)
        tbl_index = #blocks
      elseif is_caption_para(b) and tbl_index then
        if #caption > 0 then caption:insert(pandoc.Space()) end
        caption:extend(b.content)
      else
        blocks:insert(b)
      end
    end
    local cap = pandoc.Inlines(caption_prefix(label))
    cap:extend(caption)
    if tbl_index then
      local t = blocks[tbl_index]
      local existing = caption_inlines(t.caption.long or {})
      if #existing > 0 then cap:insert(pandoc.Space()); cap:extend(existing) end
      t.caption.long = { pandoc.Plain(cap) }
    else
      blocks:insert(1, pandoc.Para(cap))
    end
    div.content = blocks
    return div, false
  end
end

local function Figure(fig)
  local id = fig.identifier or ""
  if not id:match("^fig%-") then return nil end
  count.fig = count.fig + 1
  local label = prefix.fig .. " " .. count.fig
  labels[id] = label
  return number_figure(fig, label), false
end

-- pass 2: resolve references ---------------------------------------------------------
local function Cite(cite)
  local all = true
  for _, c in ipairs(cite.citations) do
    if not labels[c.id] then
      if c.id:match("^fig%-") or c.id:match("^tbl%-") then
        error("crossref.lua: reference @" .. c.id .. " points to no figure or table in this document")
      end
      all = false
    end
  end
  if not all then return nil end
  local out = pandoc.Inlines({})
  for i, c in ipairs(cite.citations) do
    if i > 1 then out:extend({ pandoc.Str(","), pandoc.Space() }) end
    out:extend(c.prefix or {})
    if c.prefix and #c.prefix > 0 then out:insert(pandoc.Space()) end
    out:insert(pandoc.Link({ pandoc.Str(labels[c.id]) }, "#" .. c.id))
    out:extend(c.suffix or {})
  end
  return out
end

return {
  { Meta = Meta },
  { traverse = "topdown", Div = Div, Figure = Figure },
  { Cite = Cite },
}
