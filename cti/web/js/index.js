// The start page: links to the pages, in the chosen language.
import "./qa-i18n.js";
import { $ } from "./dom.js";
import { applyText, langSwitch, onLangChange } from "./i18n.js";

applyText();
$("#lang").append(langSwitch());
onLangChange(() => applyText());
