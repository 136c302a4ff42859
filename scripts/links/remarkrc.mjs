// The link checker's one plugin (scripts/docs.sh links): every relative link and image in
// a document names a file that exists, and every #anchor a heading of its target (GitHub's
// ids, which mdBook's match for our headings). Offline: no web link is followed, and no
// git remote is asked for (`repository: false`).
import remarkValidateLinks from 'remark-validate-links'

export default {plugins: [[remarkValidateLinks, {repository: false}]]}
