--[[
callout.lua -- `::: {.callout-note title="Key Points"}` as a plain box, the same under both engines.

  ::: {.callout-note title="Key Points"}  -> a Div .boxed: a bold title paragraph, then the content
  ...                                        (Typst: a framed block)
  :::

Under Quarto it runs at `pre-ast`, before Quarto turns callouts into its own: those look different
in each format, and their Typst form in Quarto 1.6 imports a Typst package from the internet
(@preview/fontawesome), so an offline PDF render of the document would fail there.
The class is `boxed`, not `callout`: Quarto would take a Div of class `callout` for a callout.
]]

local function is_callout(div)
  return div.classes:find_if(function(c) return c == "callout" or c:match("^callout%-") end) ~= nil
end

local function Div(div)
  if not is_callout(div) then return nil end
  local content = pandoc.Blocks({})
  local title = div.attributes["title"]
  if title then
    content:insert(pandoc.Para({ pandoc.Strong(pandoc.Inlines(title)) }))
  end
  content:extend(div.content)
  if (FORMAT or ""):match("typst") then
    local out = pandoc.Blocks({ pandoc.RawBlock("typst",
      "#block(width: 100%, inset: 8pt, radius: 2pt, stroke: 0.6pt + rgb(\"#7a8a99\"), fill: rgb(\"#f2f5f8\"))[") })
    out:extend(content)
    out:insert(pandoc.RawBlock("typst", "]"))
    return out
  end
  local attrs = {}
  for k, v in pairs(div.attributes) do if k ~= "title" then attrs[k] = v end end
  local classes = pandoc.List({})
  for _, c in ipairs(div.classes) do
    if not (c == "callout" or c:match("^callout%-")) then classes:insert(c) end
  end
  classes:insert("boxed")
  return pandoc.Div(content, pandoc.Attr(div.identifier, classes, attrs))
end

return { { Div = Div } }
