// The start page: links to the three pages, in the chosen language.
import { $ } from "./dom.js";
import { applyText, langSwitch, onLangChange } from "./i18n.js";

applyText();
$("#lang").append(langSwitch());
onLangChange(() => applyText());
